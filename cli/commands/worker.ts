/** weft worker. */
import type { Command } from 'commander';

export function registerWorkerCommand(_program: Command): void {
  // the command lands here
}
