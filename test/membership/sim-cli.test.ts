/**
 * `npm run sim` as a user runs it: src/sim/cli.ts in its own process, printing one
 * JSON line of figures, and refusing bad arguments with a message and a non-zero exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/sim/cli.ts', import.meta.url));

function sim(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', CLI, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('npm run sim prints exactly one JSON line with the figures of the run, the same for the same seed', async () => {
  const args = ['--members', '20', '--scenario', 'quiet', '--seed', '1', '--duration', '20'];
  const runs = [await sim(args), await sim(args)];
  const reports = runs.map(({ code, stdout, stderr }) => {
    assert.equal(code, 0, stderr);
    const lines = stdout.split('\n');
    assert.equal(lines.length, 2, `one line and its newline: ${JSON.stringify(stdout.slice(0, 200))}`);
    assert.equal(lines[1], '');
    return JSON.parse(lines[0]) as Record<string, unknown> & { updateSpreadMs: { count: number; max: number }; messagesByType: Record<string, number> };
  });
  const r = reports[0];
  assert.equal(r.scenario, 'quiet');
  assert.equal(r.config, 'pulsekeeper');
  assert.equal(r.members, 20);
  assert.equal(r.seed, 1);
  assert.equal(r.simulatedSeconds, 20, '--duration is in seconds');
  assert.equal(r.crashed, 0);
  // quiet has no faults, so any failure declaration would be false; 1% loss must not cause one.
  assert.equal(r.falseFailures, 0);
  assert.equal(r.finalViewGaps, 0);
  assert.equal(r.updateSpreadMs.count, 3, 'the three metadata updates reached everyone');
  assert.ok(r.updateSpreadMs.max > 0 && r.updateSpreadMs.max < 10_000);
  assert.ok((r.messagesPerMemberSecond as number) > 0 && r.messagesByType.ping > 0 && r.messagesByType.ack > 0);
  assert.ok(typeof r.wallSeconds === 'number' && typeof r.cpuSeconds === 'number');
  // One seed, one run: everything but the time it took to compute is the same.
  const figures = (x: Record<string, unknown>) => ({ ...x, wallSeconds: 0, cpuSeconds: 0 });
  assert.deepEqual(figures(reports[1]), figures(r));
});

test('npm run sim refuses a bad argument with a message and a non-zero exit', async () => {
  const cases: [string[], RegExp][] = [
    [['--members', '1'], /--members must be an integer/],
    [['--scenario', 'no-such-scenario'], /no scenario no-such-scenario/],
    [['--duration', '0'], /--duration must be/],
    [['--bogus'], /bogus/],
  ];
  for (const [args, message] of cases) {
    const { code, stdout, stderr } = await sim(args);
    assert.notEqual(code, 0, `${args.join(' ')} exits non-zero`);
    assert.match(stderr, message);
    assert.match(stderr, /usage: npm run sim/);
    assert.equal(stdout, '', 'no figures printed');
  }
});
