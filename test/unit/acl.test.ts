import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { authenticate, checkPerm, fixupAcl, generateDigest } from '../../src/acl/acl.js';
import { ErrorCode } from '../../src/protocol/errors.js';
import { Perms } from '../../src/protocol/opcodes.js';
import { skipWithoutZooKeeper } from '../support/zookeeper.js';

const world = (perms: number) => ({ perms, id: { scheme: 'world', id: 'anyone' } });

test('digest ids match Apache ZooKeeper\'s DigestAuthenticationProvider', { skip: skipWithoutZooKeeper() }, () => {
  const out = execFileSync('java', ['-cp', '/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-api.jar', 'org.apache.zookeeper.server.auth.DigestAuthenticationProvider', 'alice:secret'], { encoding: 'utf8' });
  assert.equal(out.trim().split('->')[1], generateDigest('alice:secret'));
});

test('digest is user:base64(sha1(user:password))', () => {
  assert.equal(generateDigest('super:test'), 'super:D/InIHSb7yEEbrWz8b9l71RjZJU=');
});

test('checkPerm: world, digest, ip with CIDR, super', () => {
  const alice = authenticate('digest', Buffer.from('alice:secret'), '10.1.2.3')!;
  const ip = [{ scheme: 'ip', id: '10.1.2.3' }];
  assert.ok(checkPerm([world(Perms.READ)], Perms.READ, []));
  assert.ok(!checkPerm([world(Perms.READ)], Perms.WRITE, []));
  const digestAcl = [{ perms: Perms.ALL, id: { scheme: 'digest', id: generateDigest('alice:secret') } }];
  assert.ok(checkPerm(digestAcl, Perms.WRITE, alice));
  assert.ok(!checkPerm(digestAcl, Perms.WRITE, ip));
  assert.ok(checkPerm([{ perms: Perms.ALL, id: { scheme: 'ip', id: '10.0.0.0/8' } }], Perms.READ, ip));
  assert.ok(!checkPerm([{ perms: Perms.ALL, id: { scheme: 'ip', id: '10.1.3.0/24' } }], Perms.READ, ip));
  assert.ok(checkPerm([{ perms: Perms.ALL, id: { scheme: 'ip', id: '::1' } }], Perms.READ, [{ scheme: 'ip', id: '::1' }]));
  const sup = authenticate('digest', Buffer.from('super:test'), '1.1.1.1', 'super:D/InIHSb7yEEbrWz8b9l71RjZJU=')!;
  assert.ok(checkPerm(digestAcl, Perms.ADMIN, sup), 'the super digest passes every ACL');
  assert.equal(authenticate('nosuch', Buffer.alloc(0), '1.1.1.1'), null);
});

test('fixupAcl: INVALIDACL rules, auth expansion, duplicates removed', () => {
  assert.equal(fixupAcl([], []), ErrorCode.INVALIDACL);
  assert.equal(fixupAcl([{ perms: 31, id: { scheme: 'nosuch', id: 'x' } }], []), ErrorCode.INVALIDACL);
  assert.equal(fixupAcl([{ perms: 31, id: { scheme: 'digest', id: 'nocolon' } }], []), ErrorCode.INVALIDACL);
  assert.equal(fixupAcl([{ perms: 31, id: { scheme: 'ip', id: '300.1.1.1' } }], []), ErrorCode.INVALIDACL);
  assert.equal(fixupAcl([{ perms: 31, id: { scheme: 'auth', id: '' } }], [{ scheme: 'ip', id: '1.2.3.4' }]), ErrorCode.INVALIDACL);
  const alice = authenticate('digest', Buffer.from('alice:secret'), '1.2.3.4')!;
  assert.deepEqual(fixupAcl([{ perms: 31, id: { scheme: 'auth', id: '' } }], alice), [{ perms: 31, id: { scheme: 'digest', id: generateDigest('alice:secret') } }]);
  assert.deepEqual(fixupAcl([world(31), world(31)], []), [world(31)]);
});
