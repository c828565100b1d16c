/**
 * Reading a workflow specification file: JSON, JSON5 or YAML, chosen by extension (`.json`,
 * `.json5`, `.yaml`/`.yml`; anything else is tried as YAML, which also reads JSON). Every fault
 * is one line naming the file (and the line and column for a syntax error), so `weft run` and
 * `weft workflows create` never print a parser's stack.
 */
import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import JSON5 from 'json5';
import YAML from 'yaml';
import { CliError } from './client.js';

export type SpecFormat = 'json' | 'json5' | 'yaml';

export interface LoadedSpec {
  /** The path as given. */
  path: string;
  format: SpecFormat;
  /** The parsed specification (a plain object). */
  spec: Record<string, unknown>;
}

/** The format a file name asks for. */
export function specFormatOf(path: string): SpecFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.json5') return 'json5';
  return 'yaml';
}

/** Parse spec text in a format; throws CliError naming `source` on a syntax error. */
export function parseSpecText(text: string, format: SpecFormat, source: string): Record<string, unknown> {
  let value: unknown;
  try {
    if (format === 'json') value = JSON.parse(text);
    else if (format === 'json5') value = JSON5.parse(text);
    else {
      const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
      const first = doc.errors[0];
      if (first) {
        const at = first.linePos?.[0];
        const what = firstLine(first.message).replace(/\s+at line \d+, column \d+:?$/, '');
        throw new CliError(`${source} is not valid YAML${at ? ` (line ${at.line}, column ${at.col})` : ''}: ${what}`);
      }
      value = doc.toJS({ maxAliasCount: 1000 });
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    const what = format === 'json' ? 'JSON' : 'JSON5';
    throw new CliError(`${source} is not valid ${what}: ${firstLine((err as Error).message)}`, undefined, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const got = value === null || value === undefined ? 'nothing' : Array.isArray(value) ? 'a list' : `a ${typeof value}`;
    throw new CliError(`${source} must hold a workflow specification (a mapping with name, jobs, files, ...), but it holds ${got}`);
  }
  return value as Record<string, unknown>;
}

/** Read and parse a spec file; one-line CliError when it is missing, unreadable or malformed. */
export function loadSpecFile(path: string): LoadedSpec {
  let text: string;
  try {
    if (statSync(path).isDirectory()) throw new CliError(`${path} is a directory, not a workflow specification file`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`Spec file not found: ${path}`, undefined, { cause: err });
    if (code === 'EACCES') throw new CliError(`Cannot read spec file ${path}: permission denied`, undefined, { cause: err });
    throw new CliError(`Cannot read spec file ${path}: ${firstLine((err as Error).message)}`, undefined, { cause: err });
  }
  const format = specFormatOf(path);
  return { path, format, spec: parseSpecText(text, format, path) };
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}
