/**
 * `weft graph KEY NAME [--render svg|png] [-o FILE]`: the dependency graphs of a workflow, as DOT
 * (Graphviz's language) or as a picture. SVG is drawn by the bundled @viz-js/viz (Graphviz compiled
 * to WebAssembly: nothing to install); PNG needs Graphviz's `dot` program on PATH.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { apiCall, CliError, clientFor, requireWorkflow, withConnection, type ConnectionOptions } from '../lib/client.js';
import { printJson } from '../lib/output.js';

/** Graph names the server knows, and the short names people type. */
const GRAPHS: Readonly<Record<string, string>> = {
  job_job_dependencies: 'job_job_dependencies',
  job_file_dependencies: 'job_file_dependencies',
  job_user_data_dependencies: 'job_user_data_dependencies',
  jobs: 'job_job_dependencies',
  files: 'job_file_dependencies',
  'user-data': 'job_user_data_dependencies',
  user_data: 'job_user_data_dependencies',
};

interface GraphFlags extends ConnectionOptions {
  render?: 'svg' | 'png';
  output?: string;
}

export function registerGraphCommand(program: Command): void {
  withConnection(
    program
      .command('graph <workflow> [name]')
      .description('Print a dependency graph as DOT, or draw it (--render svg|png). NAME: jobs (job_job_dependencies, default), files (job_file_dependencies), user-data (job_user_data_dependencies)'),
  )
    .addOption(new Option('--render <format>', 'draw the graph: svg (bundled renderer) or png (needs Graphviz dot)').choices(['svg', 'png']))
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .action(async (key: string, name: string | undefined, opts: GraphFlags) => {
      const graphName = GRAPHS[name ?? 'jobs'];
      if (graphName === undefined) throw new CliError(`Unknown graph ${JSON.stringify(name)}; use jobs, files or user-data (or ${Object.keys(GRAPHS).slice(0, 3).join(', ')})`, 'VALIDATION_FAILED');
      const client = clientFor(opts);
      const wk = (await requireWorkflow(client, key))._key;
      const { graph } = await apiCall(() => client.request<{ graph: string }>('GET', `/workflows/${wk}/dot_graph/${graphName}`));
      if (opts.json && !opts.render) return printJson({ workflow: wk, name: graphName, dot: graph });
      let out: string | Buffer = graph;
      if (opts.render === 'svg') out = await renderSvg(graph);
      else if (opts.render === 'png') {
        if (!opts.output && process.stdout.isTTY) throw new CliError('A PNG on a terminal is unreadable: give -o FILE (or pipe the output)', 'VALIDATION_FAILED');
        out = await renderWithDot(graph, 'png');
      }
      if (opts.output) {
        writeFileSync(opts.output, out);
        process.stderr.write(`Wrote ${opts.output}\n`);
      } else process.stdout.write(out);
    });
}

/** SVG from DOT with the bundled Graphviz (WebAssembly). */
export async function renderSvg(dot: string): Promise<string> {
  const { instance } = await import('@viz-js/viz');
  const viz = await instance();
  const result = viz.render(dot, { format: 'svg' });
  if (result.status !== 'success') throw new CliError(`Graphviz could not draw the graph: ${result.errors.map((e) => e.message).join('; ')}`, 'INTERNAL');
  return result.output;
}

/** A picture from Graphviz's `dot` program; a clear line when it is not installed. */
function renderWithDot(dot: string, format: 'png'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('dot', [`-T${format}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT'
          ? new CliError(`--render ${format} needs Graphviz's dot program, which is not on PATH (install graphviz, e.g. apt install graphviz); --render svg works without it`)
          : err,
      );
    });
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(chunks));
      else if (code !== null) reject(new CliError(`dot -T${format} failed (exit ${code}): ${stderr.split('\n')[0] ?? ''}`, 'INTERNAL'));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(dot);
  });
}
