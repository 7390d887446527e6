/** The long ensemble fault run (npm run test:long): every leader fault and partition repeated ten times on one ensemble. */
process.env.ENSEMBLE_FAULT_ROUNDS ??= '10';
await import('../ensemble/faults.test.js');
