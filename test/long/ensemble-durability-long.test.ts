/** The long single-server crash run (npm run test:long): sixty SIGKILLs instead of five. */
process.env.ENSEMBLE_CRASH_ROUNDS ??= '60';
await import('../ensemble/durability.test.js');
