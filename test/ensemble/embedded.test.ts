/**
 * The embedded API: in memory by default; with a data directory, durable, so a server
 * started again on the same directory finds the same tree and sessions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../src/index.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { OpCode } from '../../src/protocol/opcodes.js';
import type { DataResponse } from '../../src/protocol/records.js';
import { RawClient } from '../support/raw-client.js';

const OPEN = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

test('with a dataDir the embedded server is durable; without one it is not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pk-embedded-'));
  try {
    let s = await startServer({ port: 0, dataDir: dir });
    let c = await RawClient.connect(s.port);
    assert.equal((await c.request({ type: OpCode.create, path: '/kept', data: Buffer.from('yes'), acl: OPEN, flags: 0 })).err, 0);
    const session = c.session;
    await c.destroy();
    await s.close();

    s = await startServer({ port: 0, dataDir: dir });
    c = await RawClient.connect(s.port);
    assert.equal(((await c.request({ type: OpCode.getData, path: '/kept', watch: false })).response as DataResponse).data!.toString(), 'yes');
    await c.close();
    const again = await RawClient.connect(s.port, { sessionId: session.sessionId, passwd: session.passwd });
    assert.equal(again.session.sessionId, session.sessionId, 'a session outlives a restart of a durable server');
    await again.close();
    await s.close();

    const mem = await startServer({ port: 0 });
    c = await RawClient.connect(mem.port);
    assert.equal((await c.request({ type: OpCode.getData, path: '/kept', watch: false })).err, ErrorCode.NONODE);
    await c.close();
    await mem.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
