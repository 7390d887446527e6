/** Waiting and fault helpers shared by the client, recipe and shell tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PulseClient, type ClientOptions } from '../../src/client/index.js';
import type { MemberConfig } from './client-member.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `cond` holds; fails after `ms` naming what it waited for (computed then, when a function). */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string | (() => string) = 'condition'): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(20);
  }
}

/**
 * Expires a client's session at once, as ZooKeeper's own tests do: another
 * connection attaches to the session with its id and password and closes it.
 * The client hears of it when it next reaches the server. Pass the test server's
 * client options so that on an ensemble the twin attaches where the client is.
 */
export async function expireSession(connectionString: string, client: PulseClient, opts: ClientOptions = {}): Promise<void> {
  const twin = await PulseClient.connect(connectionString, {
    ...opts,
    session: { id: client.sessionId, password: client.sessionPassword },
    sessionTimeoutMs: client.sessionTimeoutMs,
    renewExpiredSession: false,
  });
  await twin.close();
}

/** A member process (test/support/client-member.ts) and what it reported so far. */
export class MemberProcess {
  readonly events: { event: string; [k: string]: unknown }[] = [];
  private stderr = '';
  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => this.events.push(JSON.parse(line)));
    child.stderr!.on('data', (c) => {
      if (this.stderr.length < 10_000) this.stderr += c;
    });
  }

  static spawn(config: MemberConfig): MemberProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/client-member.ts', JSON.stringify(config)], {
      cwd: new URL('../..', import.meta.url).pathname,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new MemberProcess(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The first event of a kind, waiting for it up to ms. */
  async next(event: string, ms = 20_000): Promise<{ event: string; [k: string]: unknown }> {
    await until(() => this.events.some((e) => e.event === event) || this.child.exitCode !== null, ms, `member event ${event}`);
    const found = this.events.find((e) => e.event === event);
    if (!found) throw new Error(`member exited (${this.child.exitCode}) before ${event}: ${this.stderr}`);
    return found;
  }

  send(command: string): void {
    this.child.stdin!.write(command + '\n');
  }

  /** SIGKILL, by pid; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    process.kill(this.pid, 'SIGKILL');
    await exited;
  }
}
