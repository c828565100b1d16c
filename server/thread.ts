/**
 * `weft server` runs the server in a worker thread of its process, for one reason: the thread's
 * young generation can be given a size (Worker resourceLimits), which Node only lets a process set
 * on its command line (`--max-semi-space-size`), out of reach of a command started as `weft`.
 *
 * Why it matters: a claim or a completion allocates its parsed documents, SQL rows and HTTP objects
 * and drops them within milliseconds, but up to 64 requests are in flight, so every scavenge copies
 * what they hold. With V8's default (16 MiB semi-spaces) the server scavenged ~20 times a second
 * under 64 claimers in a closed loop, 3-6 ms each, and each scavenge delayed a whole group of
 * claims (the tail of the claim latency). bench/engine-claims.ts, 2026-11-30, server flags
 * alternated: default 114 scavenges (337 ms) in the measured runs, 0.226 ms of server CPU per
 * claim, p99 18.3-24.5 ms; 32 MiB semi-spaces 59 (274 ms); 64 MiB 27 (100 ms), 0.186 ms, p99
 * 16.7 ms. The young generation only grows to its size while it is used that hard, but creating
 * a 1,000,000-job workflow does: its peak RSS was 1,772 MiB with the default, 1,936 with 64 MiB
 * semi-spaces (over the 2 GB goal of bench/engine-create.ts) and 1,874 with 32, which is what the
 * thread gets (claims then: 5,617-5,846/s, 0.180-0.187 ms of server CPU each, p99 15.6-19.4 ms).
 *
 * The main thread keeps the signals (a worker thread cannot take them): SIGINT or SIGTERM asks the
 * thread to close the server (finish requests, stop background tasks, close the store), then the
 * process exits. A SIGKILL ends both at once, like a single-threaded server. WEFT_SERVER_THREAD=0
 * runs the server on the main thread as before (profiling with --cpu-prof, comparisons).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { startServer, type RunningServer } from './main.js';
import type { ResolveConfigOptions } from './config.js';

/** The young generation of the server thread, MiB: three semi-spaces' worth (V8 sizes it 3 x semi-space). */
export const SERVER_YOUNG_GENERATION_MB = 96;

type Flags = NonNullable<ResolveConfigOptions['flags']>;

/** What the thread tells the main thread. */
type FromThread =
  | { type: 'listening'; url: string; where: string }
  | { type: 'failed'; message: string; code?: string; stack?: string }
  | { type: 'stopped' };

/** An error from the thread, with the message and code it had there (the CLI prints `message [code]`). */
class ThreadError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined, stack: string | undefined) {
    super(message);
    this.code = code;
    if (stack) this.stack = stack;
  }
}

function whereOf(server: RunningServer): string {
  return server.config.store === 'sqlite' ? `sqlite ${server.config.db}` : `arango ${server.config.arangoUrl}`;
}

/**
 * Start the server the way `weft server` does and resolve with its URL and store once it listens;
 * rejects with the server's error if it cannot start. SIGINT/SIGTERM close it and exit the process.
 */
export async function runServerCommand(flags: Flags, env: NodeJS.ProcessEnv = process.env): Promise<{ url: string; where: string }> {
  if (env.WEFT_SERVER_THREAD === '0') {
    const server = await startServer({ flags, handleSignals: true });
    return { url: server.url, where: whereOf(server) };
  }
  const thread = new Worker(new URL(import.meta.url), {
    workerData: { flags },
    resourceLimits: { maxYoungGenerationSizeMb: SERVER_YOUNG_GENERATION_MB },
    // The thread's process.env is the process's (the store and config read WEFT_* from it).
    env: process.env,
  });
  return new Promise((resolve, reject) => {
    let listening = false;
    let stopping = false;
    const onSignal = (): void => {
      if (stopping) return;
      stopping = true;
      thread.postMessage('stop');
    };
    thread.on('message', (m: FromThread) => {
      if (m.type === 'listening') {
        listening = true;
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        resolve({ url: m.url, where: m.where });
      } else if (m.type === 'failed') {
        const err = new ThreadError(m.message, m.code, m.stack);
        if (!listening) reject(err);
        else {
          process.stderr.write(`weft: ${m.message}${m.code ? ` [${m.code}]` : ''}\n`);
          process.exitCode = 1;
        }
      } else if (m.type === 'stopped') {
        process.exitCode ??= 0;
        // The thread ends once its loop is empty; should something keep it (a stray timer), do not hang.
        setTimeout(() => process.exit(process.exitCode ?? 0), 5_000).unref();
      }
    });
    thread.on('error', (err) => {
      // An exception the thread did not catch: it is gone, and so is the server.
      if (!listening) reject(err);
      else {
        process.stderr.write(`weft: the server thread failed: ${err.message}\n`);
        process.exit(1);
      }
    });
    thread.on('exit', (code) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (!listening) reject(new Error(`the server thread exited (${code}) before listening`));
      else process.exit(process.exitCode ?? code);
    });
  });
}

/** The thread's side: start the server, report it, close it when asked. */
async function threadMain(): Promise<void> {
  const port = parentPort!;
  const { flags } = workerData as { flags: Flags };
  let server: RunningServer;
  try {
    server = await startServer({ flags, handleSignals: false });
  } catch (err) {
    const e = err as { message?: unknown; code?: unknown; stack?: unknown };
    port.postMessage({
      type: 'failed',
      message: typeof e?.message === 'string' ? e.message : String(err),
      ...(typeof e?.code === 'string' ? { code: e.code } : {}),
      ...(typeof e?.stack === 'string' ? { stack: e.stack } : {}),
    } satisfies FromThread);
    port.close();
    return;
  }
  port.postMessage({ type: 'listening', url: server.url, where: whereOf(server) } satisfies FromThread);
  port.on('message', (m: unknown) => {
    if (m !== 'stop') return;
    server.close().then(
      () => {
        port.postMessage({ type: 'stopped' } satisfies FromThread);
        port.close();
      },
      (err: unknown) => {
        port.postMessage({ type: 'failed', message: `shutdown failed: ${(err as Error)?.message ?? String(err)}` } satisfies FromThread);
        port.close();
      },
    );
  });
}

if (!isMainThread && (workerData as { flags?: unknown } | null)?.flags !== undefined && parentPort) void threadMain();
