/** weft run. */
import type { Command } from 'commander';

export function registerRunCommand(_program: Command): void {
  // the command lands here
}
