/**
 * DOT (Graphviz) text for the workflow graph views.
 *
 * Every id and label is written as a quoted DOT string, with `"` and `\` escaped and line breaks
 * turned into `\n`, so names with spaces, quotes, braces or non-ASCII characters still give a
 * graph that `dot` accepts (Torc 0.6.4 left labels unquoted; a name with a space broke the file).
 */

/** A node of a DOT graph. */
export interface DotNode {
  id: string;
  label: string;
}

/** A directed edge of a DOT graph. */
export interface DotEdge {
  from: string;
  to: string;
  label: string;
}

/** The graphs `GET /workflows/{key}/dot_graph/{name}` can draw: their title and edge collections. */
export const DOT_GRAPHS = {
  job_job_dependencies: { title: 'Job - Job Dependencies', edges: ['blocks'] },
  job_file_dependencies: { title: 'Job - File Dependencies', edges: ['produces', 'needs'] },
  job_user_data_dependencies: { title: 'Job - User Data Dependencies', edges: ['stores', 'consumes'] },
} as const;

export type DotGraphName = keyof typeof DOT_GRAPHS;
export const DOT_GRAPH_NAMES = Object.keys(DOT_GRAPHS) as DotGraphName[];

export function isDotGraphName(name: string): name is DotGraphName {
  return Object.prototype.hasOwnProperty.call(DOT_GRAPHS, name);
}

/**
 * A DOT double-quoted string. Backslashes are doubled so DOT's label escapes (`\N`, `\l`) cannot
 * be triggered by user text; quotes are escaped; CR/LF become the `\n` line break.
 */
export function dotQuote(text: string): string {
  const escaped = text
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\r\n|\r|\n/g, '\\n');
  return `"${escaped}"`;
}

/**
 * The DOT text of a strict digraph: a title label at the top, one line per node, one per edge.
 * Nodes and edges are written in the order given; an edge whose ends are not among the nodes
 * still draws (Graphviz adds the node), so callers pass every node an edge touches.
 */
export function renderDot(name: string, title: string, nodes: readonly DotNode[], edges: readonly DotEdge[]): string {
  const lines: string[] = [`strict digraph ${dotQuote(name)} {`, '  node [label="\\N"];'];
  for (const n of nodes) lines.push(`  ${dotQuote(n.id)} [label=${dotQuote(n.label)}];`);
  for (const e of edges) lines.push(`  ${dotQuote(e.from)} -> ${dotQuote(e.to)} [label=${dotQuote(e.label)}];`);
  lines.push('  labelloc="t";', `  label=${dotQuote(title)};`, '}');
  return `${lines.join('\n')}\n`;
}
