/** weft graph. */
import type { Command } from 'commander';

export function registerGraphCommand(_program: Command): void {
  // the command lands here
}
