/**
 * Where a member's CPU time went, from V8 CPU profiles (node --cpu-prof; see
 * `npm run bench:ensemble -- --cpu-prof DIR`): self time by function and by file,
 * and inclusive time of the functions named.
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile... [--top 25] [--inclusive name,name]
 */
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const MAX_PROFILE_BYTES = 1024 * 1024 * 1024;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, inclusive: { type: 'string', default: '' } },
});

function label(n: ProfileNode): string {
  const f = n.callFrame;
  const file = f.url.replace(/^file:\/\//, '').replace(/^.*\/(src|dist|node_modules)\//, '$1/');
  return `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
}

function summarise(path: string): void {
  if (statSync(path).size > MAX_PROFILE_BYTES) throw new Error(`${path}: larger than 1 GiB`);
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const byLabel = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    byLabel.set(label(n), (byLabel.get(label(n)) ?? 0) + t);
    const file = n.callFrame.url ? label(n).split(' ').pop()!.replace(/:\d+$/, '') : n.callFrame.functionName || '(native)';
    byFile.set(file, (byFile.get(file) ?? 0) + t);
  }
  const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
  const top = Number(values.top);
  console.log(`\n${path}: ${(total / 1e6).toFixed(1)} s sampled`);
  console.log('self time by function:');
  for (const [l, t] of [...byLabel].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t)}  ${l}`);
  console.log('self time by file:');
  for (const [f, t] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t)}  ${f}`);
  const names = values.inclusive!.split(',').filter(Boolean);
  if (names.length === 0) return;
  // Inclusive: a sample counts once for a name if any frame on its stack has that function name.
  const inclusive = new Map<string, number>();
  for (const [id, t] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const fn = byId.get(cur)!.callFrame.functionName;
      if (names.includes(fn)) seen.add(fn);
    }
    for (const fn of seen) inclusive.set(fn, (inclusive.get(fn) ?? 0) + t);
  }
  console.log('inclusive time:');
  for (const fn of names) console.log(`  ${pct(inclusive.get(fn) ?? 0)}  ${fn}`);
}

for (const path of positionals) summarise(path);
