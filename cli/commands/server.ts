/**
 * `weft server`: run the API server in the foreground until Ctrl-C (SIGINT) or SIGTERM.
 * Every option can also come from a WEFT_* variable or the config file (flag wins).
 */
import { Command, Option } from 'commander';
import { ENV_VARS } from '../../server/config.js';

interface ServerFlags {
  host?: string;
  port?: string;
  db?: string;
  basePath?: string;
  config?: string;
  store?: string;
  arangoUrl?: string;
  arangoDb?: string;
  arangoUser?: string;
  arangoPassword?: string;
  arangoToken?: string;
  leaseTimeoutSeconds?: string;
  bodyLimitMb?: string;
  logLevel?: string;
}

function opt(flags: string, description: string, key: keyof typeof ENV_VARS): Option {
  return new Option(flags, `${description} [env ${ENV_VARS[key]}]`);
}

export function registerServerCommand(program: Command): void {
  program
    .command('server')
    .description('Run the Weft API server (binds 127.0.0.1:8080 by default; Ctrl-C stops it)')
    .addOption(opt('--host <host>', 'interface to bind (default 127.0.0.1)', 'host'))
    .addOption(opt('--port <port>', 'TCP port, 0 for any free port (default 8080)', 'port'))
    .addOption(opt('--db <file>', 'SQLite database file (default ./weft.db)', 'db'))
    .addOption(opt('--base-path <path>', 'URL prefix of the API (default /torc-service)', 'basePath'))
    .addOption(new Option('--config <file>', 'config file (JSON, JSON5 or YAML) [env WEFT_CONFIG]'))
    .addOption(opt('--store <kind>', 'graph store: sqlite or arango (default sqlite)', 'store'))
    .addOption(opt('--arango-url <url>', 'ArangoDB URL (default http://127.0.0.1:8529)', 'arangoUrl'))
    .addOption(opt('--arango-db <name>', 'ArangoDB database (default weft)', 'arangoDb'))
    .addOption(opt('--arango-user <user>', 'ArangoDB user (default root)', 'arangoUser'))
    .addOption(opt('--arango-password <password>', 'ArangoDB password', 'arangoPassword'))
    .addOption(opt('--arango-token <jwt>', 'ArangoDB JWT, instead of user/password', 'arangoToken'))
    .addOption(opt('--lease-timeout-seconds <s>', 'give back jobs of a node silent for this long (default 60)', 'leaseTimeoutSeconds'))
    .addOption(opt('--body-limit-mb <mb>', 'largest JSON request body in MiB (default 64)', 'bodyLimitMb'))
    .addOption(opt('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)', 'logLevel'))
    .action(async (flags: ServerFlags) => {
      // In a worker thread with a larger young generation (server/thread.ts); WEFT_SERVER_THREAD=0: on this one.
      // Loaded here, not at the top: every other command would pay for loading the server (~0.3 s).
      const { runServerCommand } = await import('../../server/thread.js');
      const server = await runServerCommand({ ...flags });
      process.stdout.write(`weft server listening on ${server.url} (store: ${server.where}); Ctrl-C to stop\n`);
    });
}
