export type { FailureDetector } from './detector.js';
export { FixedTimeoutDetector } from './fixed-timeout.js';
export { PhiAccrualDetector, AKKA_DEFAULTS, phiOf, type PhiAccrualOptions } from './phi-accrual.js';
