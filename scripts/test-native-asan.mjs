#!/usr/bin/env node
// `npm run test:asan`: rebuilds the epoll addon with AddressSanitizer and UndefinedBehaviorSanitizer,
// runs the tests that drive it hardest (transport storm, server fuzz, flow control, odd requests,
// ordering) with the sanitizers' runtimes preloaded, then builds the addon again as usual.
import { execFileSync, spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const runtime = (lib) => execFileSync('gcc', [`-print-file-name=${lib}`], { encoding: 'utf8' }).trim();
const build = (env) => execFileSync(process.execPath, ['scripts/build-native.mjs'], { cwd: root, stdio: 'inherit', env: { ...process.env, PULSEKEEPER_NATIVE: 'require', ...env } });

build({ CFLAGS: '-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined', LDFLAGS: '-fsanitize=address,undefined' });
const tests = ['test/server/transport', 'test/fuzz/server', 'test/server/flow', 'test/server/odd', 'test/server/ordering'];
const r = spawnSync(process.execPath, ['scripts/run-tests.mjs', ...tests], {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    PULSEKEEPER_TRANSPORT: 'epoll',
    LD_PRELOAD: `${runtime('libasan.so')}:${runtime('libubsan.so')}`,
    // Node itself is not built with the sanitizers: its allocations at exit are not this addon's leaks.
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  },
});
build({});
process.exit(r.status ?? 1);
