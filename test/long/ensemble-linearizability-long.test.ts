/** The long ensemble linearizability run (npm run test:long): the kill, partition and pause schedule ten times over. */
process.env.ENSEMBLE_LIN_ROUNDS ??= '10';
await import('../ensemble/linearizability.test.js');
