/**
 * Specification text in JSON, JSON5 or YAML to a plain value. A syntax error is MALFORMED_BODY
 * with the line and column; a `__proto__` key is refused (as the JSON body parser does), so a
 * spec never carries one into a merge.
 */
import JSON5 from 'json5';
import YAML from 'yaml';
import { WeftError } from '../errors.js';

export type SpecFormat = 'json' | 'json5' | 'yaml';

/** The format for a media type (`application/yaml; charset=utf-8` → yaml), or undefined. */
export function specFormatOf(mediaType: string): SpecFormat | undefined {
  const type = mediaType.split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  if (type === 'application/json5') return 'json5';
  if (type === 'application/yaml' || type === 'text/yaml' || type === 'application/x-yaml' || type === 'text/x-yaml') return 'yaml';
  return undefined;
}

export const SPEC_MEDIA_TYPES = ['application/json', 'application/json5', 'application/yaml', 'text/yaml', 'application/x-yaml'] as const;

function malformed(format: SpecFormat, message: string, line?: number, column?: number): WeftError {
  const where = line === undefined ? '' : ` at line ${line}${column === undefined ? '' : `, column ${column}`}`;
  return new WeftError('MALFORMED_BODY', `The ${format.toUpperCase()} body could not be parsed${where}: ${message}`, {
    details: [{ path: [], message: `${message}${where}`, rule: format }],
    extra: line === undefined ? {} : { line, ...(column === undefined ? {} : { column }) },
  });
}

/** Parse spec text; throws MALFORMED_BODY. */
export function parseSpecText(text: string, format: SpecFormat): unknown {
  let value: unknown;
  if (format === 'yaml') {
    // One document; aliases stay capped (the library's default) so a small body cannot expand into a huge one.
    const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    const err = doc.errors[0];
    if (err) throw malformed(format, err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''), err.linePos?.[0].line, err.linePos?.[0].col);
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw malformed(format, (e as Error).message);
    }
  } else {
    try {
      value = format === 'json5' ? JSON5.parse(text) : JSON.parse(text);
    } catch (e) {
      const x = e as Error & { lineNumber?: number; columnNumber?: number };
      throw malformed(format, x.message.replace(/^JSON5: /, ''), x.lineNumber, x.columnNumber);
    }
  }
  rejectProtoKeys(value);
  return value;
}

function rejectProtoKeys(root: unknown): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
      continue;
    }
    for (const [k, x] of Object.entries(v)) {
      if (k === '__proto__') {
        throw new WeftError('MALFORMED_BODY', 'The body may not contain a "__proto__" key', { details: [{ path: [], message: 'forbidden key __proto__', rule: 'proto' }] });
      }
      stack.push(x);
    }
  }
}
