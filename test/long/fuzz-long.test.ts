/** The long fuzz run (npm run test:long): ten to twenty times the cases, connections and frames of the default suite. */
process.env.FUZZ_CASES ??= '2000000';
process.env.FUZZ_CONNECTIONS ??= '30000';
process.env.FUZZ_FRAMES ??= '1000000';
await import('../fuzz/codec-fuzz.test.js');
await import('../fuzz/server-fuzz.test.js');
