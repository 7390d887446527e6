/**
 * Thirty member processes on loopback: some SIGKILLed, some stopped and continued
 * (SIGSTOP/SIGCONT, as a long pause), one restarted at once. Every survivor must
 * converge to the same view within the bound the simulator predicts.
 *
 * Bound: the simulator's "crash" scenario at 100 members with these defaults has
 * every member agreeing on a crash within 5.3 s (p99, BENCHMARKS.md); real
 * processes sharing two cores get three times that, 16 s, plus 4 s for the news
 * to settle in every process's output.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../support/ports.js';

const MEMBERS = Number(process.env.MEMBERSHIP_PROCESSES ?? 30);
const BOUND_MS = 20_000;

interface Proc {
  id: string;
  port: number;
  child: ChildProcess;
  view: string[];
  exited: boolean;
}

const procs: Proc[] = [];
after(() => {
  for (const p of procs) if (!p.exited) p.child.kill('SIGKILL');
});

function launch(id: string, port: number, seeds: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/membership/cli.ts', '--bind', `127.0.0.1:${port}`, '--id', id, '--seeds', seeds.join(',')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const p: Proc = { id, port, child, view: [], exited: false };
  let buf = '';
  child.stdout!.on('data', (c) => {
    buf += c;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        p.view = JSON.parse(line).view;
      } catch {
        // not a view line
      }
    }
  });
  child.on('exit', () => (p.exited = true));
  return p;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

test(`${MEMBERS} member processes converge after kills, pauses and a fast restart`, { timeout: 180_000 }, async () => {
  const ports: number[] = [];
  for (let i = 0; i < MEMBERS; i++) ports.push(await freePort());
  const seeds = [`127.0.0.1:${ports[0]}`, `127.0.0.1:${ports[1]}`];
  for (let i = 0; i < MEMBERS; i++) procs.push(launch(`m${i}`, ports[i], seeds));
  const all = procs.map((p) => p.id).sort().join(',');
  assert.ok(await until(() => procs.every((p) => p.view.join(',') === all), 60_000), 'all members see all members');

  const killed = procs.slice(MEMBERS - 3);
  const paused = procs.slice(MEMBERS - 5, MEMBERS - 3);
  const restarted = procs[MEMBERS - 6];
  for (const p of killed) p.child.kill('SIGKILL');
  for (const p of paused) p.child.kill('SIGSTOP');
  restarted.child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  const again = launch(restarted.id, restarted.port, seeds);
  procs[MEMBERS - 6] = again;
  await new Promise((r) => setTimeout(r, 1500));
  for (const p of paused) p.child.kill('SIGCONT');

  const survivors = procs.filter((p) => !killed.includes(p));
  const expected = survivors.map((p) => p.id).sort().join(',');
  const start = performance.now();
  const converged = await until(() => survivors.every((p) => p.view.join(',') === expected), BOUND_MS);
  const took = performance.now() - start;
  const wrong = survivors.filter((p) => p.view.join(',') !== expected).map((p) => `${p.id}: ${p.view.length} members`);
  assert.ok(converged, `not converged within ${BOUND_MS} ms: ${wrong.join('; ')}`);
  assert.ok(took <= BOUND_MS);
});
