// Preloaded into a server process by the hold benchmark (node --expose-gc --import):
// on SIGUSR2 it runs full garbage collections and writes the process's memory to the file
// PULSEKEEPER_BENCH_MEMORY names, so memory per session is measured on live objects only.
// Resident memory is read a second later, once V8 has given the freed pages back, and right
// after filling the young generation with short-lived garbage: its pages are resident or not
// depending on the traffic of the moment, and this makes them all resident at every reading.
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

let sink;
process.on('SIGUSR2', () => {
  globalThis.gc();
  globalThis.gc();
  // A last-resort collection also compacts the old generation, so pages that hold a few
  // survivors of earlier bursts of traffic are given back instead of counted as sessions'.
  globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  const { heapUsed, heapTotal, external } = process.memoryUsage();
  setTimeout(() => {
    const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    for (let i = 0; i < (2 * young) / 64; i++) sink = [i, i, i, i, i];
    const rss = process.memoryUsage.rss();
    writeFileSync(process.env.PULSEKEEPER_BENCH_MEMORY, JSON.stringify({ rss, heapUsed, heapTotal, external, young }));
  }, 1000);
});
