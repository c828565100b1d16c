/** weft events. */
import type { Command } from 'commander';

export function registerEventsCommand(_program: Command): void {
  // the command lands here
}
