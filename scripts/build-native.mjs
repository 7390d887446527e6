#!/usr/bin/env node
// Builds the epoll client transport (native/epoll.c, binding.gyp) with node-gyp, which
// comes with npm; `npm ci` runs this. The server falls back to node's own sockets when the
// addon is missing, so a failed build warns and exits 0, unless PULSEKEEPER_NATIVE=require.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const required = process.env.PULSEKEEPER_NATIVE === 'require';

function giveUp(why) {
  console.error(`pulsekeeper: the epoll transport was not built (${why}); the server will use node's sockets`);
  process.exit(required ? 1 : 0);
}

if (process.platform !== 'linux') giveUp(`${process.platform} is not Linux`);
if (process.env.PULSEKEEPER_NATIVE === 'skip') giveUp('PULSEKEEPER_NATIVE=skip');

// npm names its node-gyp in npm_config_node_gyp; otherwise look next to npm.
const candidates = [process.env.npm_config_node_gyp, join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')];
const nodeGyp = candidates.find((p) => p && existsSync(p));
if (!nodeGyp) giveUp('node-gyp not found');

const args = [nodeGyp, 'rebuild'];
// Headers installed with node itself spare node-gyp a download (machines without network).
const prefix = join(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (r.status !== 0) {
  process.stderr.write(r.stderr.split('\n').filter((l) => !l.startsWith('gyp info')).join('\n'));
  giveUp(`node-gyp exited with ${r.status ?? r.signal}`);
}
