/**
 * Output helpers shared by the user commands: aligned tables for people, JSON for scripts.
 *
 * Tables go to stdout; a command given `--json` prints exactly one JSON value on stdout and
 * nothing else there (progress and notes go to stderr), so `weft ... --json | jq` always works.
 */
import { isAbsolute, relative } from 'node:path';

export interface Column<T> {
  /** Header text. */
  header: string;
  /** The cell text for one row. */
  value: (row: T) => unknown;
  /** Right-align (numbers). Default false. */
  right?: boolean;
}

/** Text of one cell: '' for null/undefined, numbers as they are, objects as compact JSON. */
export function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v.replace(/\s*\n\s*/g, ' ');
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

/** Lay rows out as an aligned table (two spaces between columns, a dashed rule under the header). */
export function formatTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => cellText(c.value(r))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
  const line = (texts: readonly string[]): string =>
    texts
      .map((t, i) => (columns[i]!.right ? t.padStart(widths[i]!) : t.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

/** Key/value lines for one document (`weft jobs show`), keys aligned. */
export function formatFields(fields: readonly (readonly [string, unknown])[]): string {
  const width = Math.max(0, ...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}  ${cellText(v)}`.trimEnd()).join('\n') + '\n';
}

/** Print a JSON value on stdout (two-space indent, trailing newline). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Print a table, or `(none)` line when there are no rows. */
export function printTable<T>(rows: readonly T[], columns: readonly Column<T>[], empty = '(none)'): void {
  process.stdout.write(rows.length === 0 ? `${empty}\n` : formatTable(rows, columns));
}

/** A note for people on stderr (kept out of stdout so --json output stays parseable). */
export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Seconds as `1.2s`, `3m04s`, `2h05m`. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '';
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(2) : seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds - m * 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Bytes as `512 B`, `1.5 KiB`, `2.0 GiB`. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** A path relative to the current directory when it is under it (shorter to read and to paste). */
export function shortPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r) ? r : p;
}
