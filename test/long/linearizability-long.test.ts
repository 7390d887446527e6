/** The long linearizability run (npm run test:long): twenty times the seeds of the default suite. */
process.env.LINEARIZABILITY_SEEDS ??= '3000';
process.env.LINEARIZABILITY_SMALL_SEEDS ??= '20000';
await import('../unit/linearizability.test.js');
