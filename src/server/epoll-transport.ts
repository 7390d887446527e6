/**
 * The epoll client transport: the JavaScript side of native/epoll.c. The addon reads
 * every ready connection in one wakeup and hands the bytes over as one batch of records
 * (its header comment gives the layout), which this walks to call the server.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientTransport, ListenOptions, TransportEvents } from './transport.js';

/** The addon's functions (native/epoll.c). */
export interface EpollAddon {
  listen(host: string, port: number, backlog: number, onBatch: (batch: Buffer) => void): [object, number];
  write(server: object, handle: number, data: Buffer): number;
  end(server: object, handle: number): void;
  destroy(server: object, handle: number): void;
  pause(server: object, handle: number): void;
  resume(server: object, handle: number): void;
  close(server: object): void;
}

const ACCEPTED = 1;
const DATA = 2;
const DRAINED = 3;
const CLOSED = 4;
const HEADER = 16;
const FD_LIMIT = 2 ** 24;

let loaded: { addon?: EpollAddon; error?: string } | undefined;

/** The addon as `npm ci` built it (build/Release under the package root), or why it is not there. */
export function loadEpollAddon(): { addon?: EpollAddon; error?: string } {
  if (loaded) return loaded;
  if (process.platform !== 'linux') return (loaded = { error: `${process.platform} is not Linux` });
  // From src/server or dist/src/server up to the directory that holds package.json.
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  const file = join(dir, 'build', 'Release', 'pulsekeeper_epoll.node');
  if (!existsSync(file)) return (loaded = { error: `${file} was not built (npm ci builds it with node-gyp)` });
  try {
    return (loaded = { addon: createRequire(import.meta.url)(file) as EpollAddon });
  } catch (e) {
    return (loaded = { error: `${file} does not load: ${(e as Error).message}` });
  }
}

export function listenEpoll(addon: EpollAddon, opts: ListenOptions, events: TransportEvents): ClientTransport {
  const onBatch = (batch: Buffer) => {
    for (let off = 0; off + HEADER <= batch.length; ) {
      const kind = batch[off];
      const handle = batch.readUInt32LE(off + 8) * FD_LIMIT + batch.readUInt32LE(off + 4);
      const len = batch.readUInt32LE(off + 12);
      const start = off + HEADER;
      off = start + len;
      switch (kind) {
        case ACCEPTED:
          events.accepted(handle, batch.toString('latin1', start + 2, start + len), batch.readUInt16LE(start));
          break;
        case DATA:
          events.data(handle, batch.subarray(start, start + len));
          break;
        case DRAINED:
          events.drained(handle);
          break;
        case CLOSED:
          events.closed(handle);
          break;
      }
    }
  };
  let server: object;
  let port: number;
  try {
    [server, port] = addon.listen(opts.host, opts.port, opts.backlog, onBatch);
  } catch (e) {
    // In node's words, which callers match (EADDRINUSE and the like).
    const code = (e as { code?: string }).code ?? 'ERR_EPOLL_TRANSPORT';
    throw Object.assign(new Error(`listen ${code}: ${(e as Error).message} ${opts.host}:${opts.port}`), { code });
  }
  return {
    kind: 'epoll',
    port,
    write: (handle, data) => addon.write(server, handle, data),
    pause: (handle) => addon.pause(server, handle),
    resume: (handle) => addon.resume(server, handle),
    end: (handle) => addon.end(server, handle),
    destroy: (handle) => addon.destroy(server, handle),
    async close() {
      addon.close(server);
    },
  };
}
