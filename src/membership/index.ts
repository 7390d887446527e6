/**
 * Gossip membership (SWIM with Lifeguard). The protocol core is pure; the network
 * shell that runs it over UDP/TCP lives beside it.
 */
import type { MembershipGroup } from './events.js';
import { GossipMembership as Gossip, type GossipOptions as GossipOpts } from './gossip.js';

export type { Member, MemberState as ViewMemberState, MembershipEvent, MembershipEventType, MembershipGroup, MembershipListener, MembershipView } from './events.js';
export { SwimNode, type SelfInfo } from './core/swim-node.js';
export { MEMBERLIST_LAN, PULSEKEEPER_DEFAULTS, type Gossip, type Message, type MemberState, type Output, type SwimConfig } from './core/types.js';
export { GossipMembership, type GossipOptions, type GossipStats } from './gossip.js';
export { Keyring } from './keyring.js';

/**
 * Membership chosen by configuration: gossip (this package's SWIM members) or
 * coordinated, i.e. session-based through the coordination service, supplied as a
 * factory by the client's group-membership recipe (GroupMembership.join). Both give
 * the same view, events, update and leave.
 */
export type MembershipConfig =
  | ({ kind: 'gossip' } & GossipOpts)
  | { kind: 'coordinated'; create: () => Promise<MembershipGroup> };

export async function createMembership(config: MembershipConfig): Promise<MembershipGroup> {
  if (config.kind === 'coordinated') return config.create();
  const { kind: _kind, ...opts } = config;
  return Gossip.start(opts);
}
