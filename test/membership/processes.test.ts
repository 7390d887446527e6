/**
 * Thirty member processes on loopback: some SIGKILLed, some stopped and continued
 * (SIGSTOP/SIGCONT, as a long pause), one restarted at once. Every survivor must
 * converge to the same view within the bound the simulator predicts.
 *
 * The bound comes from the simulator's "processes" scenario, which scripts these
 * same faults for 30 members with the default configuration: the test runs it for
 * ten seeds and takes the longest time until every view is exact. Real processes
 * share a loaded two-core machine, where timers fire late and thirty processes
 * compete for the CPU, so they get twice that plus 5 s. The clock starts at the
 * faults, or later by however much longer than the simulated 2 s the restarted
 * process took to come up.
 *
 * Beyond the final views, the events every survivor printed are checked: a member
 * paused for less than the failure time is never reported failed, and the restarted
 * member is reported failed at most once (its old incarnation) and never after it
 * has rejoined.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../support/ports.js';
import { SCENARIOS, simulate } from '../../src/sim/simulator.js';
import { PULSEKEEPER_DEFAULTS } from '../../src/membership/core/types.js';

const MEMBERS = 30;

interface Proc {
  id: string;
  port: number;
  child: ChildProcess;
  view: string[];
  /** Every membership event the process printed, in order, with when it was read. */
  events: { type: string; id: string; at: number }[];
  startedAt?: number;
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
  const p: Proc = { id, port, child, view: [], events: [], exited: false };
  let buf = '';
  child.stdout!.on('data', (c) => {
    buf += c;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const out = JSON.parse(line);
        p.view = out.view;
        if (out.event === 'started') p.startedAt = performance.now();
        else p.events.push({ type: out.event, id: out.id, at: performance.now() });
      } catch {
        // not a view line
      }
    }
  });
  child.on('exit', () => (p.exited = true));
  return p;
}

async function until(cond: () => boolean, deadline: number): Promise<boolean> {
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

test(`${MEMBERS} member processes converge after kills, pauses and a fast restart, within the simulated bound, never reporting a paused or rejoined member failed`, { timeout: 300_000 }, async (t) => {
  const scenario = { name: 'processes', ...SCENARIOS.processes };
  const simulated = Array.from({ length: 10 }, (_, k) => simulate(MEMBERS, scenario, PULSEKEEPER_DEFAULTS, 'pulsekeeper', k + 1));
  for (const r of simulated) assert.ok(r.settledMs !== undefined && r.falseFailures === 0, `simulated seed ${r.seed} settles cleanly`);
  const simulatedBound = Math.max(...simulated.map((r) => r.settledMs!));
  const bound = 2 * simulatedBound + 5000;
  // The scenario's pause, shorter than the least time a failure takes to be declared (a suspicion's timeout).
  const pauseMs = scenario.faults!(MEMBERS).find((f) => f.kind === 'pause')!.forMs;
  assert.ok(pauseMs < PULSEKEEPER_DEFAULTS.minSuspicionTimeoutMs);

  const ports: number[] = [];
  for (let i = 0; i < MEMBERS; i++) ports.push(await freePort());
  const seeds = [`127.0.0.1:${ports[0]}`, `127.0.0.1:${ports[1]}`];
  for (let i = 0; i < MEMBERS; i++) procs.push(launch(`m${i}`, ports[i], seeds));
  const all = procs.map((p) => p.id).sort().join(',');
  // Starting thirty processes on a busy machine takes a while; that is not what is measured.
  assert.ok(await until(() => procs.every((p) => p.view.join(',') === all), performance.now() + 180_000), 'all members see all members');

  // The scenario's roles: the last three crash, the two before pause 1.8 s, the one before those restarts.
  const killed = procs.slice(MEMBERS - 3);
  const paused = procs.slice(MEMBERS - 5, MEMBERS - 3);
  const restarted = procs[MEMBERS - 6];
  const faultsAt = performance.now();
  for (const p of killed) p.child.kill('SIGKILL');
  for (const p of paused) p.child.kill('SIGSTOP');
  restarted.child.kill('SIGKILL');
  const again = launch(restarted.id, restarted.port, seeds);
  procs[MEMBERS - 6] = again;
  await new Promise((r) => setTimeout(r, pauseMs));
  for (const p of paused) p.child.kill('SIGCONT');
  assert.ok(await until(() => again.startedAt !== undefined, performance.now() + 60_000), 'the restarted member came up');

  const from = faultsAt + Math.max(0, again.startedAt! - faultsAt - 2000);
  const survivors = procs.filter((p) => !killed.includes(p));
  const expected = survivors.map((p) => p.id).sort().join(',');
  const converged = await until(() => survivors.every((p) => p.view.join(',') === expected), from + bound);
  const wrong = survivors.filter((p) => p.view.join(',') !== expected).map((p) => `${p.id}: ${p.view.length} members`);
  assert.ok(converged, `not converged within ${bound} ms (simulated ${simulatedBound} ms): ${wrong.join('; ')}`);
  t.diagnostic(`converged ${Math.round(performance.now() - from)} ms after the faults; bound ${bound} ms (simulated ${simulatedBound} ms)`);

  // A false accusation made just before convergence would end in `failed` up to a suspicion timeout and a last-chance probe later.
  await new Promise((r) => setTimeout(r, PULSEKEEPER_DEFAULTS.minSuspicionTimeoutMs + 4 * PULSEKEEPER_DEFAULTS.probeIntervalMs));
  const stale = survivors.filter((p) => p.view.join(',') !== expected).map((p) => p.id);
  assert.deepEqual(stale, [], 'the views stay converged');
  const problems: string[] = [];
  for (const s of survivors) {
    for (const p of paused) {
      if (s.events.some((e) => e.type === 'failed' && e.id === p.id)) problems.push(`${s.id} reported the paused ${p.id} failed`);
    }
    if (s === again) continue;
    // What this survivor printed about the restarted member since the faults: at most one death (of the old process),
    // and after it is back (join after a death, or alive after a suspicion) never another.
    const about = s.events.filter((e) => e.id === restarted.id && e.at >= faultsAt).map((e) => e.type);
    if (about.filter((e) => e === 'failed').length > 1) problems.push(`${s.id} declared ${restarted.id} dead twice: ${about.join(' ')}`);
    const back = about.findIndex((e) => e === 'join' || e === 'alive');
    if (back >= 0 && about.slice(back).includes('failed')) problems.push(`${s.id} reported ${restarted.id} failed after it rejoined: ${about.join(' ')}`);
  }
  assert.deepEqual(problems, []);
  const suspectedPaused = paused.map((p) => `${p.id} by ${survivors.filter((s) => s.events.some((e) => e.type === 'suspect' && e.id === p.id)).length}`);
  t.diagnostic(`paused members suspected (and cleared): ${suspectedPaused.join(', ')}`);
  const restartNews = survivors.filter((s) => s !== again).map((s) => s.events.filter((e) => e.id === restarted.id && e.at >= faultsAt).map((e) => e.type).join(' ') || '-');
  t.diagnostic(`what survivors printed about the restarted ${restarted.id}: ${[...new Set(restartNews)].map((x) => `${x} (${restartNews.filter((y) => y === x).length})`).join('; ')}`);
});
