#!/usr/bin/env node
/**
 * The `pulsekeeper` command. Subcommands load their parts lazily so `start` does
 * not pay for the shell or the gossip layer.
 */
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { VERSION } from '../server/four-letter.js';

const USAGE = `usage: pulsekeeper <command> [options]

commands:
  start [--config FILE] [--port N] [--host ADDR] [--data-dir DIR] [--tick-time MS]
        run a server (defaults: 127.0.0.1:2181, data under ./data); with server.N lines
        in the config file, an ensemble member
  ensemble [--size N] [--base-port P] [--peer-port P] [--data-dir DIR]
        run a local ensemble of N members on loopback (defaults: 3, 2181, 2888, ./data/ensemble)
  status [HOST:PORT[,HOST:PORT...]]
        print the ensemble's health as its members report it (default 127.0.0.1:2181)
  membership --bind HOST:PORT [--seeds HOST:PORT,...] [--key FILE] [--id NAME]
        run a gossip (SWIM) member and print the live view as it changes
  shell [HOST:PORT[,HOST:PORT...][/chroot]] [-c "cmd; cmd"]
        an interactive shell with the zkCli commands (history, tab completion of paths)
  version
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return start(rest);
    case 'ensemble': {
      const { ensembleCommand } = await import('../ensemble/cli.js');
      return ensembleCommand(rest);
    }
    case 'status': {
      const { statusCommand } = await import('../ensemble/cli.js');
      return statusCommand(rest);
    }
    case 'membership': {
      const { membershipCommand } = await import('../membership/cli.js');
      return membershipCommand(rest);
    }
    case 'shell': {
      const { shellCommand } = await import('../shell/shell.js');
      return shellCommand(rest);
    }
    case 'version':
    case '--version':
      console.log(VERSION);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      'data-dir': { type: 'string', short: 'd' },
      'tick-time': { type: 'string' },
    },
    strict: true,
  });
  const { loadZooCfg, resolveConfig } = await import('../server/config.js');
  const { startMember } = await import('../ensemble/member.js');
  const { createLogger } = await import('../util/log.js');
  const logger = createLogger();
  const num = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer`);
    return n;
  };
  const fileCfg = values.config ? loadZooCfg(resolve(values.config)) : {};
  const config = resolveConfig(fileCfg, {
    port: num(values.port, 'port'),
    host: values.host,
    dataDir: values['data-dir'],
    tickTime: num(values['tick-time'], 'tick-time'),
  });
  mkdirSync(resolve(config.dataDir), { recursive: true });
  const server = await startMember({ config, logger });
  process.stdout.write(
    `pulsekeeper ${VERSION} listening on ${server.connectionString} (data: ${resolve(config.dataDir)})\n` +
      `connect with any ZooKeeper client, e.g.: zkCli.sh -server ${server.connectionString}\n`,
  );
  await new Promise<void>((done) => {
    const stop = (signal: string) => {
      logger.info('shutting down', { signal });
      server.close().then(done, done);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`pulsekeeper: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
