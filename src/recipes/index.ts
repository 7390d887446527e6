export { GroupMembership, type GroupOptions } from './group.js';
export { LeaderElection } from './election.js';
export { Lock, ReadWriteLock, QueueLock, LockTimeoutError, LockLostError } from './lock.js';
export { RoleAssignment, rebalance, rolesByMember, type RoleOptions, type RoleOwners } from './roles.js';
export { watchConfig, Barrier, BarrierTimeoutError, DoubleBarrier, DistributedCounter } from './misc.js';
