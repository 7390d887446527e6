/**
 * Gossip membership (SWIM with Lifeguard). The protocol core is pure; the network
 * shell that runs it over UDP/TCP lives beside it.
 */
export type { Member, MemberState as ViewMemberState, MembershipEvent, MembershipEventType, MembershipListener, MembershipView } from './events.js';
export { SwimNode, type SelfInfo } from './core/swim-node.js';
export { MEMBERLIST_LAN, PULSEKEEPER_DEFAULTS, type Gossip, type Message, type MemberState, type Output, type SwimConfig } from './core/types.js';
export { GossipMembership, type GossipOptions, type GossipStats } from './gossip.js';
export { Keyring } from './keyring.js';
