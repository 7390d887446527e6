/** The portable client transport: node's net.Server and one net.Socket per connection. */
import * as net from 'node:net';
import { HANDLE_SLOTS } from './connection.js';
import type { ClientTransport, ListenOptions, TransportEvents } from './transport.js';

const HANDLE = Symbol('handle');
type Tagged = net.Socket & { [HANDLE]: number };

export async function listenNet(opts: ListenOptions, events: TransportEvents): Promise<ClientTransport> {
  const sockets = new Map<number, net.Socket>();
  // Handles as the epoll transport makes them, a generation above a slot: slots are reused, so
  // the server can keep its connections in an array; the generation tells reuses apart.
  const freeSlots: number[] = [];
  const generations: number[] = [];
  const handleFor = () => {
    const slot = freeSlots.pop() ?? generations.length;
    generations[slot] = ((generations[slot] ?? 0) + 1) % 2 ** 29;
    return generations[slot] * HANDLE_SLOTS + slot;
  };
  const release = (handle: number) => {
    sockets.delete(handle);
    freeSlots.push(handle % HANDLE_SLOTS);
  };
  // Listeners shared by every socket (node calls them with the socket as `this`): no closures per connection.
  function onData(this: Tagged, chunk: Buffer) {
    events.data(this[HANDLE], chunk);
  }
  function onDrain(this: Tagged) {
    events.drained(this[HANDLE]);
  }
  function onClose(this: Tagged) {
    if (!sockets.has(this[HANDLE])) return;
    release(this[HANDLE]);
    events.closed(this[HANDLE]);
  }
  const ignore = () => {};
  const listener = net.createServer({ noDelay: true }, (socket) => {
    const handle = handleFor();
    (socket as Tagged)[HANDLE] = handle;
    sockets.set(handle, socket);
    socket.on('data', onData);
    socket.on('drain', onDrain);
    socket.on('error', ignore);
    socket.on('close', onClose);
    events.accepted(handle, socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0);
  });
  listener.maxConnections = 1_000_000;
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen({ host: opts.host, port: opts.port, backlog: opts.backlog }, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  return {
    kind: 'net',
    port: (listener.address() as net.AddressInfo).port,
    write(handle, data) {
      const socket = sockets.get(handle);
      if (!socket || !socket.writable) return -1;
      socket.write(data);
      return socket.writableLength;
    },
    pause(handle) {
      sockets.get(handle)?.pause();
    },
    resume(handle) {
      sockets.get(handle)?.resume();
    },
    end(handle) {
      const socket = sockets.get(handle);
      if (socket?.writable) socket.end();
    },
    destroy(handle) {
      const socket = sockets.get(handle);
      if (!socket) return;
      release(handle);
      socket.destroy();
    },
    close() {
      const stopped = new Promise<void>((resolve) => listener.close(() => resolve()));
      for (const socket of sockets.values()) socket.destroy();
      sockets.clear();
      return stopped;
    },
  };
}
