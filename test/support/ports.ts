import { createServer } from 'node:net';

/** Ports this process handed out: the server meant to bind one may not have done so yet. */
const handedOut = new Set<number>();

async function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => {
      const got = (s.address() as { port: number }).port;
      s.close(() => resolve(got));
    });
  });
}

/**
 * A port free on 127.0.0.1 right now, for a server a test starts a moment later. It is
 * taken below Linux's ephemeral range (32768 and up), where the kernel also picks the
 * local ports of outgoing connections: a port found free there can be taken by any
 * process's next connection before the server binds it.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const candidate = 10_000 + Math.floor(Math.random() * 22_000);
    if (handedOut.has(candidate)) continue;
    const port = await tryListen(candidate);
    if (port !== undefined) {
      handedOut.add(port);
      return port;
    }
  }
  const any = await tryListen(0);
  if (any === undefined) throw new Error('no free port');
  return any;
}
