/**
 * The membership event interface shared by gossip membership (SWIM) and the client's
 * session-based group-membership recipe, so an application can switch between the two
 * by configuration without changing its handlers.
 */
export type MemberState = 'alive' | 'suspect' | 'failed' | 'left';

export interface Member {
  /** Stable member name, unique in the cluster. */
  readonly id: string;
  /** Where the member can be reached (host:port), when known. */
  readonly address?: string;
  /** Application metadata, versioned by the membership layer. */
  readonly meta: Uint8Array;
  readonly state: MemberState;
}

export type MembershipEventType = 'join' | 'suspect' | 'alive' | 'failed' | 'left' | 'updated';

export interface MembershipEvent {
  readonly type: MembershipEventType;
  readonly member: Member;
}

export type MembershipListener = (event: MembershipEvent) => void;

/** A live view of the cluster, whatever keeps it. */
export interface MembershipView {
  /** Members currently considered part of the cluster (alive or suspect). */
  members(): Member[];
  on(type: MembershipEventType | 'change', listener: MembershipListener): this;
  off(type: MembershipEventType | 'change', listener: MembershipListener): this;
  close(): Promise<void>;
}

/**
 * A view this process takes part in: it can publish its metadata and leave gracefully
 * (others see `updated` and `left`). Both gossip membership and the group-membership
 * recipe have this shape.
 */
export interface MembershipGroup extends MembershipView {
  update(meta: Uint8Array): Promise<void>;
  leave(): Promise<void>;
}
