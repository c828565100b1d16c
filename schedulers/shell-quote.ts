/**
 * Quoting for the two places where Weft must write text that something else will parse:
 * POSIX shell command lines (remote commands over SSH, the worker line of an sbatch script) and
 * `#SBATCH` directive lines (parsed by sbatch's own tokenizer, not by a shell).
 *
 * Rule: every value that came from a user goes through one of these, never into a template.
 */
import { WeftError } from '../graph/errors.js';

/** Characters that no argument may contain: NUL and the other C0 controls except tab, plus DEL. */
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** Throws VALIDATION_FAILED when `value` holds a newline or another control character. */
export function assertNoControlChars(value: string, field: string): void {
  if (CONTROL.test(value)) {
    throw new WeftError('VALIDATION_FAILED', `${field} must not contain newlines or control characters`, {
      details: [{ path: [field], message: 'contains a newline or control character', rule: 'no_control_chars' }],
    });
  }
}

/**
 * One POSIX-shell word that stands for exactly `value`: wrapped in single quotes, each `'` written
 * as `'\''`. Safe words (letters, digits, `_-./:=@%+,`) are left bare for readability.
 * NUL cannot be passed in an argument at all and is refused.
 */
export function shellQuote(value: string): string {
  if (value.includes('\u0000')) throw new WeftError('VALIDATION_FAILED', 'A shell argument must not contain a NUL byte');
  if (value !== '' && /^[A-Za-z0-9_\-./:=@%+,]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A shell command line that runs exactly `argv` (no expansion, no word splitting). */
export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/**
 * Split a user-written option string (a scheduler's `extra`) into tokens the way a POSIX shell
 * would split words, without any expansion: single quotes, double quotes (where `\` escapes
 * `"`, `\`, `$` and `` ` ``) and backslash escapes are honoured; `$`, `;`, `|`, backticks and the
 * like are ordinary characters of a token. Throws on an unterminated quote or a control character.
 */
export function splitArgs(text: string, field = 'extra'): string[] {
  assertNoControlChars(text, field);
  const tokens: string[] = [];
  let current = '';
  let inToken = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === ' ' || ch === '\t') {
      if (inToken) tokens.push(current);
      current = '';
      inToken = false;
      i++;
    } else if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) throw unterminated(field, "'");
      current += text.slice(i + 1, end);
      inToken = true;
      i = end + 1;
    } else if (ch === '"') {
      i++;
      let closed = false;
      while (i < text.length) {
        const c = text[i] as string;
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        if (c === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1] as string)) {
          current += text[i + 1];
          i += 2;
        } else {
          current += c;
          i++;
        }
      }
      if (!closed) throw unterminated(field, '"');
      inToken = true;
    } else if (ch === '\\') {
      if (i + 1 >= text.length) throw new WeftError('VALIDATION_FAILED', `${field} ends with a lone backslash`, { details: [{ path: [field], message: 'ends with a lone backslash', rule: 'syntax' }] });
      current += text[i + 1];
      inToken = true;
      i += 2;
    } else {
      current += ch;
      inToken = true;
      i++;
    }
  }
  if (inToken) tokens.push(current);
  return tokens;
}

function unterminated(field: string, quote: string): WeftError {
  return new WeftError('VALIDATION_FAILED', `${field} has an unterminated ${quote} quote`, {
    details: [{ path: [field], message: `unterminated ${quote} quote`, rule: 'syntax' }],
  });
}

/**
 * One token of an `#SBATCH` line that sbatch reads back as exactly `value`. sbatch's directive
 * tokenizer (`_get_argument` in sbatch/opt.c) ends a token at any unquoted blank (a backslash does
 * not protect a blank), honours '...' and "..." grouping, treats a backslash as an escape even
 * inside quotes, and an unquoted `#` starts a comment. So the value is wrapped in double quotes
 * with every `\` and `"` backslash-escaped. Newlines are refused: they would end the directive.
 */
export function sbatchToken(value: string, field: string): string {
  assertNoControlChars(value, field);
  if (value !== '' && /^[A-Za-z0-9_\-./:=@%+,]+$/.test(value)) return value;
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
