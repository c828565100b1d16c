/** weft workflows. */
import type { Command } from 'commander';

export function registerWorkflowsCommand(_program: Command): void {
  // the command lands here
}
