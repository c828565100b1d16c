/**
 * Which GPUs are free. A job that asks for N GPUs takes N free device ids, which become its
 * CUDA_VISIBLE_DEVICES, and gives them back when it ends; two running jobs never share one.
 */
export class GpuPool {
  private readonly free: string[];
  private readonly all: readonly string[];

  constructor(ids: readonly string[]) {
    this.all = [...ids];
    this.free = [...ids];
  }

  get size(): number {
    return this.all.length;
  }

  get available(): number {
    return this.free.length;
  }

  /** Take `n` free ids (lowest first), or null when fewer than `n` are free. */
  take(n: number): string[] | null {
    if (n <= 0) return [];
    if (n > this.free.length) return null;
    this.free.sort((a, b) => this.all.indexOf(a) - this.all.indexOf(b));
    return this.free.splice(0, n);
  }

  /** Give ids back; ids that are not ours or already free are ignored. */
  release(ids: readonly string[]): void {
    for (const id of ids) if (this.all.includes(id) && !this.free.includes(id)) this.free.push(id);
  }
}
