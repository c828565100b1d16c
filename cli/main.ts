#!/usr/bin/env node
/**
 * The `weft` command. Each command family lives in cli/commands/<family>.ts and exports a
 * `register...(program)` function; add it to COMMANDS below with a one-line edit (its names and
 * its import).
 *
 * Failures print one line on stderr (`weft: <message>`) and exit non-zero; no stack traces
 * (set WEFT_DEBUG=1 to see them).
 */
import { Command, CommanderError } from 'commander';
import { WEFT_VERSION } from '../server/version.js';
type Register = (program: Command) => void;

/**
 * The command families, by the names (and aliases) that select them. Each is loaded when it is
 * used: `weft worker` does not load the server, the schedulers or the spec parsers (the server
 * alone took ~0.3 s to load, which every command paid: `weft worker --help` 0.35 s -> 0.13 s, a worker
 * started 0.3 s sooner). Help and unknown commands load them all.
 */
const COMMANDS: readonly { names: readonly string[]; load: () => Promise<Register> }[] = [
  { names: ['server'], load: async () => (await import('./commands/server.js')).registerServerCommand },
  { names: ['hpc'], load: async () => (await import('./commands/hpc.js')).registerHpcCommand },
  { names: ['worker'], load: async () => (await import('./commands/worker.js')).registerWorkerCommand },
  { names: ['run'], load: async () => (await import('./commands/run.js')).registerRunCommand },
  { names: ['workflows', 'workflow'], load: async () => (await import('./commands/workflows.js')).registerWorkflowsCommand },
  { names: ['jobs', 'job'], load: async () => (await import('./commands/jobs.js')).registerJobsCommand },
  { names: ['graph'], load: async () => (await import('./commands/graph.js')).registerGraphCommand },
  { names: ['events'], load: async () => (await import('./commands/events.js')).registerEventsCommand },
  { names: ['results'], load: async () => (await import('./commands/results.js')).registerResultsCommand },
  { names: ['reports'], load: async () => (await import('./commands/reports.js')).registerReportsCommand },
  { names: ['schedule'], load: async () => (await import('./commands/schedule.js')).registerScheduleCommand },
];

function oneLine(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const code = typeof e?.code === 'string' && /^[A-Z_]+$/.test(e.code) ? ` [${e.code}]` : '';
  return `${message.split('\n')[0]}${code}`;
}

function fail(err: unknown): never {
  if (process.env.WEFT_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.stderr.write(`weft: ${oneLine(err)}\n`);
  process.exit(1);
}

/**
 * The program with the command family `args` names (its first word, before any option), or with
 * every family when it names none of them (help, a typo: commander suggests from all of them).
 */
export async function buildProgram(args: readonly string[] = process.argv.slice(2)): Promise<Command> {
  const program = new Command('weft')
    .description('Weft: a graph-database DAG job orchestrator for HPC')
    .version(WEFT_VERSION, '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const first = args[0];
  const chosen = COMMANDS.find((c) => first !== undefined && c.names.includes(first));
  for (const c of chosen ? [chosen] : COMMANDS) (await c.load())(program);
  return program;
}

async function main(): Promise<void> {
  let program: Command;
  try {
    program = await buildProgram();
  } catch (err) {
    fail(err);
  }
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its one-line message (or the help / version).
      process.exit(err.exitCode);
    }
    fail(err);
  }
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
void main();
