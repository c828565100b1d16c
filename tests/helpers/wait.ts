/**
 * waitFor: poll until a condition holds, for tests that watch real processes (Slurm jobs, EC2
 * instances, workers) reach a state.
 */

/**
 * Call `fn` every `everyMs` until it returns something other than undefined, and return that;
 * throw `timed out waiting for <what>` once `timeoutMs` has passed. Defaults: 60 s, every 300 ms.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 300): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
