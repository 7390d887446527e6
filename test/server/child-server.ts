/**
 * A pulsekeeper server in a process of its own, for tests that watch its memory or
 * kill it: `node --import tsx test/server/child-server.ts '<config overrides as JSON>'`
 * prints `{"port":N}` once listening and serves until killed.
 */
import { startServer } from '../../src/index.js';

const server = await startServer(JSON.parse(process.argv[2] ?? '{}'));
console.log(JSON.stringify({ port: server.port }));
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
