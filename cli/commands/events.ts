/**
 * `weft events KEY [--follow] [--category C]`: the events of a workflow (starts, claims,
 * completions, cancellations, lease expiries...), oldest first; `--follow` keeps polling for new
 * ones until Ctrl-C.
 */
import { Command } from 'commander';
import type { Doc, WeftClient } from '../../client/index.js';
import { apiCall, clientFor, requireWorkflow, withConnection, type ConnectionOptions } from '../lib/client.js';
import { cellText, printJson } from '../lib/output.js';

interface EventFlags extends ConnectionOptions {
  follow?: boolean;
  category?: string;
  interval?: string;
}

const PAGE = 1000;

/** Every event after `after` (ms), oldest first, all pages. */
async function eventsAfter(client: WeftClient, workflow: string, after: number, category?: string): Promise<Doc[]> {
  const out: Doc[] = [];
  for (let skip = 0; ; ) {
    const page = await apiCall(() => client.eventsAfter(workflow, after, { skip, limit: PAGE, ...(category ? { category } : {}) }));
    out.push(...page.items);
    skip += page.items.length;
    if (!page.has_more || page.items.length === 0) return out;
  }
}

function eventLine(e: Doc): string {
  const ts = typeof e['timestamp'] === 'number' ? new Date(e['timestamp']).toISOString() : '';
  const who = e['job_name'] ?? e['job_key'] ?? e['node_name'] ?? '';
  return [ts.padEnd(24), String(e['category'] ?? '').padEnd(10), String(e['type'] ?? '').padEnd(16), cellText(who).padEnd(16), cellText(e['message'])].join(' ').trimEnd();
}

const HEADER = ['time'.padEnd(24), 'category'.padEnd(10), 'type'.padEnd(16), 'job/node'.padEnd(16), 'message'].join(' ');

export function registerEventsCommand(program: Command): void {
  withConnection(program.command('events <workflow>').description('Print the events of a workflow, oldest first (--follow: keep printing new ones)'))
    .option('-f, --follow', 'keep polling for new events until Ctrl-C')
    .option('-c, --category <category>', 'only events of this category (workflow, job, compute_node, ...)')
    .option('--interval <seconds>', 'seconds between polls with --follow (default 1)')
    .action(async (key: string, opts: EventFlags) => {
      const client = clientFor(opts);
      const wk = (await requireWorkflow(client, key))._key;
      const intervalMs = Math.max(0.1, Number(opts.interval ?? 1)) * 1000;
      const first = await eventsAfter(client, wk, 0, opts.category);
      if (!opts.follow) {
        if (opts.json) return printJson(first);
        process.stdout.write(first.length === 0 ? '(no events)\n' : `${HEADER}\n${first.map(eventLine).join('\n')}\n`);
        return;
      }
      // Following: one line (or one JSON object) per event as it comes.
      const print = (e: Doc): void => {
        process.stdout.write(opts.json ? `${JSON.stringify(e)}\n` : `${eventLine(e)}\n`);
      };
      if (!opts.json) process.stdout.write(`${HEADER}\n`);
      first.forEach(print);
      let last = Math.max(0, ...first.map((e) => Number(e['timestamp'] ?? 0)));
      // Events that share the last millisecond may still be arriving: re-ask from last-1 and skip
      // the ones already printed (events_after_timestamp is strictly greater-than).
      const seen = new Map(first.map((e) => [e._key, Number(e['timestamp'] ?? 0)]));
      let stop = false;
      const onSignal = (): void => {
        stop = true;
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      while (!stop) {
        await new Promise((r) => setTimeout(r, intervalMs));
        if (stop) break;
        const fresh = (await eventsAfter(client, wk, Math.max(0, last - 1), opts.category)).filter((e) => !seen.has(e._key));
        fresh.forEach(print);
        for (const e of fresh) seen.set(e._key, Number(e['timestamp'] ?? 0));
        last = Math.max(last, ...fresh.map((e) => Number(e['timestamp'] ?? 0)));
        for (const [k, ts] of seen) if (ts < last - 1) seen.delete(k);
      }
    });
}
