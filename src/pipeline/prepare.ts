/**
 * The prepare step: turns a request into the transaction body to commit, applying
 * what ZooKeeper's client-side Op classes do to multi ops on the server's way in.
 */
import { CreateMode, isTTLMode, OpCode } from '../protocol/opcodes.js';
import type { MultiOp } from '../protocol/records.js';

/**
 * ZooKeeper rebuilds each create in a multi from its flags (Op.create): the mode
 * picks the opcode (a CONTAINER mode makes createContainer, any other mode create;
 * unknown flags stay, to fail as bad arguments). A create with a TTL mode but no TTL stays
 * a create: applying it fails the whole multi, as ZooKeeper cannot decode it.
 */
export function normaliseMultiOps(ops: MultiOp[]): MultiOp[] {
  const out: MultiOp[] = [];
  for (const op of ops) {
    switch (op.type) {
      case OpCode.create:
      case OpCode.create2:
      case OpCode.createContainer: {
        out.push({ ...op, type: op.flags === CreateMode.CONTAINER ? OpCode.createContainer : OpCode.create });
        break;
      }
      case OpCode.createTTL: {
        const { ttl: _ttl, ...rest } = op;
        if (isTTLMode(op.flags)) out.push(op);
        else out.push({ ...rest, type: op.flags === CreateMode.CONTAINER ? OpCode.createContainer : OpCode.create });
        break;
      }
      default:
        out.push(op);
    }
  }
  return out;
}
