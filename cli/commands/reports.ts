/** weft reports. */
import type { Command } from 'commander';

export function registerReportsCommand(_program: Command): void {
  // the command lands here
}
