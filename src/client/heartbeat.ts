/**
 * When a connection pings and when it is given up, as a pure function of the
 * negotiated session timeout and the times the last frame was sent and heard
 * (monotonic milliseconds, injected). A ping goes out when nothing was sent for a
 * third of the timeout; the connection is declared lost when nothing was heard
 * for two thirds of it, which leaves the last third to reach another server
 * before the session expires.
 */
export type HeartbeatAction = 'ping' | 'lost';

export class Heartbeat {
  private lastSent: number;
  private lastHeard: number;

  constructor(
    readonly sessionTimeoutMs: number,
    now: number,
  ) {
    if (!(sessionTimeoutMs > 0)) throw new RangeError(`session timeout must be positive, got ${sessionTimeoutMs}`);
    this.lastSent = this.lastHeard = now;
  }

  get pingIdleMs(): number {
    return this.sessionTimeoutMs / 3;
  }

  get lostSilenceMs(): number {
    return (this.sessionTimeoutMs * 2) / 3;
  }

  sent(now: number): void {
    this.lastSent = Math.max(this.lastSent, now);
  }

  heard(now: number): void {
    this.lastHeard = Math.max(this.lastHeard, now);
  }

  /** What is due at `now`: losing the connection takes precedence over pinging. */
  due(now: number): HeartbeatAction | undefined {
    if (now - this.lastHeard >= this.lostSilenceMs) return 'lost';
    if (now - this.lastSent >= this.pingIdleMs) return 'ping';
    return undefined;
  }

  /** The earliest time at which due() can answer something new. */
  nextCheck(): number {
    return Math.min(this.lastSent + this.pingIdleMs, this.lastHeard + this.lostSilenceMs);
  }
}
