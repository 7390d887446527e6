/**
 * The long differential run (npm run test:long): many more seeds and longer
 * sequences than the default suite, starting where it stops.
 */
process.env.DIFF_SEEDS ??= '300';
process.env.DIFF_OPS ??= '1000';
process.env.DIFF_FIRST_SEED ??= '5000';
await import('../differential/differential.test.js');
