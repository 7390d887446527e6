/** The long crash run (npm run test:long): a hundred SIGKILLed writer processes instead of eight. */
process.env.WAL_CRASH_ROUNDS ??= '100';
await import('../storage/wal-crash.test.js');
