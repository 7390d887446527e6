export { GroupMembership, type GroupOptions } from './group.js';
export { LeaderElection } from './election.js';
export { Lock, ReadWriteLock, LockTimeoutError } from './lock.js';
export { RoleAssignment, assignRoles } from './roles.js';
export { watchConfig, Barrier, DoubleBarrier, DistributedCounter } from './misc.js';
