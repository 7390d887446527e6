/** The portable client transport: node's net.Server and one net.Socket per connection. */
import * as net from 'node:net';
import type { ClientTransport, ListenOptions, TransportEvents } from './transport.js';

const HANDLE = Symbol('handle');
type Tagged = net.Socket & { [HANDLE]: number };

export async function listenNet(opts: ListenOptions, events: TransportEvents): Promise<ClientTransport> {
  const sockets = new Map<number, net.Socket>();
  let next = 1;
  // Listeners shared by every socket (node calls them with the socket as `this`): no closures per connection.
  function onData(this: Tagged, chunk: Buffer) {
    events.data(this[HANDLE], chunk);
  }
  function onDrain(this: Tagged) {
    events.drained(this[HANDLE]);
  }
  function onClose(this: Tagged) {
    if (sockets.delete(this[HANDLE])) events.closed(this[HANDLE]);
  }
  const ignore = () => {};
  const listener = net.createServer({ noDelay: true }, (socket) => {
    const handle = next++;
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
      sockets.delete(handle);
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
