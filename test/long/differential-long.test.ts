/**
 * The long differential run (npm run test:long): many more seeds and longer
 * sequences than the default suite, starting where it stops; the first hundred
 * include the pulsekeeper ensemble.
 */
process.env.DIFF_SEEDS ??= '300';
process.env.DIFF_OPS ??= '1000';
process.env.DIFF_FIRST_SEED ??= '5000';
process.env.DIFF_ENSEMBLE_SEEDS ??= '100';
await import('../differential/differential.test.js');
