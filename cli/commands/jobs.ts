/** weft jobs. */
import type { Command } from 'commander';

export function registerJobsCommand(_program: Command): void {
  // the command lands here
}
