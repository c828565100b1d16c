#!/usr/bin/env node
/**
 * The `weft` command. Each command family lives in cli/commands/<family>.ts and exports a
 * `register...(program)` function; add it to COMMANDS below with a one-line edit.
 *
 * Failures print one line on stderr (`weft: <message>`) and exit non-zero; no stack traces
 * (set WEFT_DEBUG=1 to see them).
 */
import { Command, CommanderError } from 'commander';
import { WEFT_VERSION } from '../server/index.js';
import { registerServerCommand } from './commands/server.js';
import { registerHpcCommand } from './commands/hpc.js';
import { registerWorkerCommand } from './commands/worker.js';
import { registerRunCommand } from './commands/run.js';
import { registerWorkflowsCommand } from './commands/workflows.js';
import { registerJobsCommand } from './commands/jobs.js';
import { registerGraphCommand } from './commands/graph.js';
import { registerEventsCommand } from './commands/events.js';
import { registerResultsCommand } from './commands/results.js';
import { registerReportsCommand } from './commands/reports.js';
import { registerScheduleCommand } from './commands/schedule.js';

const COMMANDS: readonly ((program: Command) => void)[] = [
  registerServerCommand,
  registerHpcCommand,
  registerWorkerCommand,
  registerRunCommand,
  registerWorkflowsCommand,
  registerJobsCommand,
  registerGraphCommand,
  registerEventsCommand,
  registerResultsCommand,
  registerReportsCommand,
  registerScheduleCommand,
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

export function buildProgram(): Command {
  const program = new Command('weft')
    .description('Weft: a graph-database DAG job orchestrator for HPC')
    .version(WEFT_VERSION, '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
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
