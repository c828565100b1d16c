import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { sbatchToken, shellJoin, shellQuote, splitArgs } from '../../schedulers/shell-quote.js';

const HOSTILE = [
  `x'; touch /tmp/pwned; echo '`,
  `$(touch /tmp/pwned)`,
  '`touch /tmp/pwned`',
  `a"b'c\\d`,
  `'`,
  `''`,
  `\\'`,
  ' leading and trailing ',
  '*',
  '~root',
  '$HOME ${PATH} $((1+1))',
  'a;b|c&d>e<f',
  '-n',
  '',
  'tab\there',
  'ünïcødé ✓',
  '!event',
  '#comment',
];

/** What /bin/sh really makes of a line: one argument per output line, NUL-separated. */
function shellSees(line: string): string[] {
  const out = execFileSync('/bin/sh', ['-c', `${line}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

describe('shellQuote / shellJoin', () => {
  it.each(HOSTILE)('a POSIX shell reads %j back as exactly one identical argument', (value) => {
    const line = shellJoin(['printf', '%s\\0', value]);
    expect(shellSees(line)).toEqual([value]);
  });

  it('keeps every argument separate, however hostile', () => {
    expect(shellSees(shellJoin(['printf', '%s\\0', ...HOSTILE]))).toEqual(HOSTILE);
  });

  it('leaves plain words bare and quotes the rest', () => {
    expect(shellQuote('sbatch')).toBe('sbatch');
    expect(shellQuote('--parsable')).toBe('--parsable');
    expect(shellQuote('/a/b.sh')).toBe('/a/b.sh');
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('')).toBe(`''`);
  });

  it('refuses a NUL byte', () => {
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });
});

describe('splitArgs (a scheduler extra field)', () => {
  it('splits like a shell without expanding anything', () => {
    expect(splitArgs(`--constraint="a b" --comment='x;y' --exclusive  -C\\ d`)).toEqual(['--constraint=a b', '--comment=x;y', '--exclusive', '-C d']);
    expect(splitArgs(`--x=$(touch /tmp/pwned) --y=\`id\``)).toEqual(['--x=$(touch', '/tmp/pwned)', '--y=`id`']);
    expect(splitArgs('   ')).toEqual([]);
    expect(splitArgs(`--a=""`)).toEqual(['--a=']);
    expect(splitArgs(`"a\\"b"`)).toEqual(['a"b']);
  });

  it('rejects unterminated quotes, a lone backslash and newlines, naming the field', () => {
    expect(() => splitArgs(`--a='b`)).toThrow(/extra has an unterminated ' quote/);
    expect(() => splitArgs(`--a="b`)).toThrow(/unterminated " quote/);
    expect(() => splitArgs('--a\\')).toThrow(/lone backslash/);
    expect(() => splitArgs('--a\n#SBATCH --wrap=id')).toThrow(/extra must not contain newlines/);
  });
});

describe('sbatchToken', () => {
  it('quotes for sbatch directive parsing and refuses newlines', () => {
    expect(sbatchToken('debug', 'partition')).toBe('debug');
    expect(sbatchToken(`x'; touch /tmp/pwned; echo '`, 'name')).toBe(`"x'; touch /tmp/pwned; echo '"`);
    expect(sbatchToken('a"b\\c #d', 'name')).toBe('"a\\"b\\\\c #d"');
    expect(() => sbatchToken('a\nb', 'account')).toThrow(/account must not contain newlines/);
  });
});
