/**
 * The socket layer under the server's connections: it accepts clients, hands their
 * bytes to the server and writes what the server sends, naming each connection by a
 * number (its handle). Two implementations:
 * - epoll: a native addon (native/epoll.c) keeping every client socket of the server in
 *   one epoll set; a few hundred bytes per idle connection. Linux only, built at install.
 * - net: node's own net.Socket, a few kilobytes per connection; everywhere.
 * `auto` takes epoll when its addon loads, net otherwise; PULSEKEEPER_TRANSPORT=net|epoll
 * chooses for a whole process (for instance to run the tests over each).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { listenEpoll, loadEpollAddon } from './epoll-transport.js';
import { listenNet } from './net-transport.js';

export type TransportKind = 'epoll' | 'net';

/** What a transport tells the server, connection by connection. */
export interface TransportEvents {
  accepted(handle: number, remoteAddress: string, remotePort: number): void;
  data(handle: number, chunk: Buffer): void;
  /** Everything written so far has gone to the socket. */
  drained(handle: number): void;
  /** The peer closed or the connection failed (not called after destroy()). */
  closed(handle: number): void;
}

export interface ClientTransport {
  readonly kind: TransportKind;
  /** The port it listens on. */
  readonly port: number;
  /** Queues bytes for the connection; returns how many wait for the socket, or -1 if the connection is gone. */
  write(handle: number, data: Buffer): number;
  /** Stops and restarts reading the connection. */
  pause(handle: number): void;
  resume(handle: number): void;
  /** Closes the connection once its output is written (closed() follows). */
  end(handle: number): void;
  /** Closes the connection now; closed() does not follow. */
  destroy(handle: number): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

export interface ListenOptions {
  host: string;
  port: number;
  backlog: number;
  /** Which implementation; by default PULSEKEEPER_TRANSPORT, else auto. */
  kind?: TransportKind | 'auto';
}

export function requestedTransport(kind: ListenOptions['kind']): TransportKind | 'auto' {
  const chosen = kind ?? process.env.PULSEKEEPER_TRANSPORT ?? 'auto';
  if (chosen !== 'auto' && chosen !== 'epoll' && chosen !== 'net') throw new Error(`unknown client transport "${chosen}" (auto, epoll or net)`);
  return chosen;
}

export async function listenForClients(opts: ListenOptions, events: TransportEvents): Promise<ClientTransport> {
  const kind = requestedTransport(opts.kind);
  if (kind === 'net' || (kind === 'auto' && !loadEpollAddon().addon)) return listenNet(opts, events);
  const addon = loadEpollAddon();
  if (!addon.addon) throw new Error(`the epoll client transport is not available: ${addon.error}`);
  // The addon binds numeric addresses only.
  const address = isIP(opts.host) ? opts.host : (await lookup(opts.host)).address;
  return listenEpoll(addon.addon, { ...opts, host: address }, events);
}
