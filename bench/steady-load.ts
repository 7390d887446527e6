/**
 * A closed-loop load that outlives member failures: each of N session slots keeps a
 * window of requests in flight against one member and, when its connection ends (the
 * member died, or closed its clients in an election), opens a new session on the next
 * running member. Latencies go into a fixed histogram, so long runs take bounded memory.
 */
import { OpCode } from '../src/protocol/opcodes.js';
import { createFrame, frame, LoadSession } from './load.js';
import type { BenchEnsemble } from './ensembles.js';

export interface SteadyLoadOptions {
  sessions: number;
  window: number;
  /** Percent of requests that are writes (setData); the rest are reads (getData). */
  writePercent: number;
  /** Session timeout asked for, ms. */
  sessionTimeoutMs?: number;
}

/** Latencies in 0.1 ms buckets up to 60 s; slower ones count in the last bucket. */
class Histogram {
  private readonly buckets = new Float64Array(600_001);
  count = 0;

  add(ms: number): void {
    this.buckets[Math.min(this.buckets.length - 1, Math.max(0, Math.round(ms * 10)))]++;
    this.count++;
  }

  quantile(q: number): number {
    const rank = Math.floor(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i];
      if (seen > rank) return i / 10;
    }
    return NaN;
  }
}

export interface SteadyLoadReport {
  ops: number;
  errors: number;
  reconnects: number;
  seconds: number;
  opsPerSec: number;
  p50: number;
  p99: number;
  p999: number;
}

const DATA = Buffer.alloc(100, 'x');

export class SteadyLoad {
  private readonly latencies = new Histogram();
  private errors = 0;
  private reconnects = 0;
  private running = false;
  private started = 0;
  private readonly live = new Set<LoadSession>();
  private readonly slotsDone: Promise<void>[] = [];

  constructor(
    private readonly ensemble: BenchEnsemble,
    private readonly o: SteadyLoadOptions,
  ) {}

  /** Creates the znodes the load touches and starts every slot. */
  async start(): Promise<void> {
    const setupSession = await LoadSession.open(this.ensemble.port(this.ensemble.ids[0]), 30_000);
    const frames = [createFrame('/load', Buffer.alloc(0)), ...Array.from({ length: this.o.sessions }, (_, k) => createFrame(`/load/s${k}`, DATA))];
    await new Promise<void>((resolve) => {
      let n = 0;
      setupSession.setHandler(() => {
        if (++n === frames.length) resolve();
      });
      for (const f of frames) setupSession.send(f);
    });
    setupSession.close();
    this.running = true;
    this.started = performance.now();
    for (let k = 0; k < this.o.sessions; k++) this.slotsDone.push(this.runSlot(k));
  }

  /** One slot: a session on a running member driven until its connection ends, then another. */
  private async runSlot(k: number): Promise<void> {
    const write = frame({ type: OpCode.setData, path: `/load/s${k}`, data: DATA, version: -1 });
    const read = frame({ type: OpCode.getData, path: `/load/s${k}`, watch: false });
    // The i-th request is a write when it takes the count of writes so far to the next whole number.
    const isWrite = (n: number) => Math.floor(((n + 1) * this.o.writePercent) / 100) > Math.floor((n * this.o.writePercent) / 100);
    let i = 0;
    let attempt = 0;
    while (this.running) {
      const ids = this.ensemble.ids.filter((id) => this.ensemble.isRunning(id));
      if (ids.length === 0) break;
      const id = ids[(k + attempt++) % ids.length];
      let s: LoadSession;
      try {
        s = await LoadSession.open(this.ensemble.port(id), this.o.sessionTimeoutMs ?? 15_000);
      } catch {
        this.reconnects++;
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      this.live.add(s);
      await new Promise<void>((resolve) => {
        const pump = () => {
          if (!this.running || s.socket.destroyed) return;
          s.socket.cork();
          while (s.inFlight < this.o.window) s.send(isWrite(i++) ? write : read);
          s.socket.uncork();
        };
        s.setHandler((latency, err) => {
          this.latencies.add(latency);
          if (err !== 0) this.errors++;
          pump();
        });
        s.socket.once('close', () => resolve());
        pump();
      });
      this.live.delete(s);
      if (this.running) {
        this.reconnects++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** Operations completed so far. */
  get ops(): number {
    return this.latencies.count;
  }

  async stop(): Promise<SteadyLoadReport> {
    this.running = false;
    const seconds = (performance.now() - this.started) / 1000;
    for (const s of this.live) s.close();
    await Promise.all(this.slotsDone);
    const h = this.latencies;
    return {
      ops: h.count,
      errors: this.errors,
      reconnects: this.reconnects,
      seconds,
      opsPerSec: h.count / seconds,
      p50: h.quantile(0.5),
      p99: h.quantile(0.99),
      p999: h.quantile(0.999),
    };
  }
}
