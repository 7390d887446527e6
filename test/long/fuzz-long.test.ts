/** The long fuzz run (npm run test:long): ten times the cases and connections of the default suite. */
process.env.FUZZ_CASES ??= '2000000';
process.env.FUZZ_CONNECTIONS ??= '30000';
await import('../fuzz/codec-fuzz.test.js');
await import('../fuzz/server-fuzz.test.js');
