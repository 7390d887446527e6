/**
 * `pulsekeeper membership --bind HOST:PORT [--seeds HOST:PORT,...] [--key FILE] [--id NAME]`:
 * runs one gossip member and prints every membership change as a JSON line with
 * the live view after it. SIGTERM or Ctrl-C leaves the cluster gracefully; SIGHUP
 * reads the key file again (key rotation) and prints the packet counters.
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { GossipMembership } from './gossip.js';
import { Keyring } from './keyring.js';

export async function membershipCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      bind: { type: 'string' },
      seeds: { type: 'string' },
      key: { type: 'string' },
      id: { type: 'string' },
      meta: { type: 'string' },
      'generate-key': { type: 'boolean' },
    },
    strict: true,
  });
  if (values['generate-key']) {
    console.log(Keyring.generateKey().toString('base64'));
    return 0;
  }
  if (!values.bind) {
    process.stderr.write('usage: pulsekeeper membership --bind HOST:PORT [--seeds HOST:PORT,...] [--key FILE] [--id NAME] [--meta TEXT]\n       pulsekeeper membership --generate-key\n');
    return 2;
  }
  const keyring = values.key ? Keyring.fromFile(values.key) : undefined;
  const member = await GossipMembership.start({
    bind: values.bind,
    id: values.id,
    seeds: values.seeds ? values.seeds.split(',').map((s) => s.trim()).filter(Boolean) : [],
    keyring,
    meta: values.meta ? Buffer.from(values.meta) : undefined,
  });
  const view = () => member.members().map((m) => m.id).sort();
  const print = (fields: Record<string, unknown>) => process.stdout.write(JSON.stringify({ ...fields, view: view() }) + '\n');
  print({ event: 'started', id: member.node.id, address: member.address });
  member.on('change', (ev) => print({ event: ev.type, id: ev.member.id, address: ev.member.address }));
  process.on('SIGHUP', () => {
    try {
      if (keyring && values.key) keyring.reload(values.key);
      print({ event: 'reloaded', keys: keyring?.size ?? 0, stats: member.stats });
    } catch (e) {
      process.stderr.write(`membership: key file not reloaded: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  });
  await new Promise<void>((resolve) => {
    const stop = () => {
      member.leave().then(resolve, resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  membershipCommand(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`membership: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
