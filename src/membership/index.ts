/**
 * Gossip membership (SWIM with Lifeguard). The protocol core is pure; the network
 * shell that runs it over UDP/TCP lives beside it.
 */
import { PulseClient } from '../client/index.js';
import { GroupMembership } from '../recipes/group.js';
import type { MembershipGroup } from './events.js';
import { GossipMembership as Gossip, type GossipOptions as GossipOpts } from './gossip.js';

export type { Member, MemberState as ViewMemberState, MembershipEvent, MembershipEventType, MembershipGroup, MembershipListener, MembershipView } from './events.js';
export { SwimNode, type SelfInfo } from './core/swim-node.js';
export { MEMBERLIST_LAN, PULSEKEEPER_DEFAULTS, type Gossip, type Message, type MemberState, type Output, type SwimConfig } from './core/types.js';
export { GossipMembership, type GossipOptions, type GossipStats } from './gossip.js';
export { Keyring } from './keyring.js';

/**
 * Coordinated (session-based) membership as plain data: a client session with the
 * coordination service and the group-membership recipe on it. A member that stops
 * heartbeating is reported failed once its session times out.
 */
export interface CoordinatedConfig {
  kind: 'coordinated';
  /** host:port[,host:port...][/chroot] of the coordination service. */
  connectionString: string;
  /** The group's parent znode, e.g. /services/api/members. */
  path: string;
  /** This member's name; omit to watch the group without joining. */
  id?: string;
  meta?: Uint8Array;
  /** The session timeout asked for (the server clamps it): how soon a silent member is reported failed. Default 30 s. */
  sessionTimeoutMs?: number;
}

/**
 * Membership chosen by configuration: gossip (this package's SWIM members) or
 * coordinated, i.e. session-based through the coordination service with the client's
 * group-membership recipe (GroupMembership.join). Both give the same view, events,
 * update and leave. A coordinated group may also come from a factory, for a client
 * the application opens itself.
 */
export type MembershipConfig =
  | ({ kind: 'gossip' } & GossipOpts)
  | CoordinatedConfig
  | { kind: 'coordinated'; create: () => Promise<MembershipGroup> };

export async function createMembership(config: MembershipConfig): Promise<MembershipGroup> {
  if (config.kind === 'coordinated') return 'create' in config ? config.create() : joinCoordinated(config);
  const { kind: _kind, ...opts } = config;
  return Gossip.start(opts);
}

/** The group-membership recipe on a client of its own, closed with the group. */
async function joinCoordinated(config: CoordinatedConfig): Promise<MembershipGroup> {
  const client = await PulseClient.connect(config.connectionString, { sessionTimeoutMs: config.sessionTimeoutMs });
  try {
    return await GroupMembership.join(client, { path: config.path, id: config.id, meta: config.meta, ownsClient: true });
  } catch (e) {
    await client.close();
    throw e;
  }
}
