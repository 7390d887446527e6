export * from './jute.js';
export * from './opcodes.js';
export * from './errors.js';
export * from './records.js';
export * from './frame.js';
