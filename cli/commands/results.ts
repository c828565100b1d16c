/** weft results. */
import type { Command } from 'commander';

export function registerResultsCommand(_program: Command): void {
  // the command lands here
}
