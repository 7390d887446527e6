/**
 * A pulsekeeper server in a process of its own, for tests that watch its memory or
 * kill it: `node --import tsx test/server/child-server.ts '<config overrides as JSON>'`
 * prints `{"port":N}` once listening and serves until killed. Run with --expose-gc, it
 * answers SIGUSR2 with full collections and then a line `{"memory":{heapUsed,...}}`,
 * so a test can compare live memory only.
 */
import { startServer } from '../../src/index.js';

const server = await startServer(JSON.parse(process.argv[2] ?? '{}'));
console.log(JSON.stringify({ port: server.port }));
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
const gc = globalThis.gc;
if (gc) {
  process.on('SIGUSR2', () => {
    gc();
    gc();
    const { heapUsed, external, arrayBuffers, rss } = process.memoryUsage();
    console.log(JSON.stringify({ memory: { heapUsed, external, arrayBuffers, rss } }));
  });
}
