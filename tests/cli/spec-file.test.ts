/**
 * Spec files and tables: JSON, JSON5 and YAML read by extension; every fault one line naming the
 * file (and the line for YAML); aligned tables.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSpecFile, parseSpecText, specFormatOf } from '../../cli/lib/spec-file.js';
import { formatBytes, formatDuration, formatTable } from '../../cli/lib/output.js';
import { outcomeOf } from '../../cli/lib/summary.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-spec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const expected = { name: 'w', jobs: [{ name: 'a', command: 'echo a' }] };

describe('spec files', () => {
  it('reads JSON, JSON5 and YAML by extension to the same spec', () => {
    expect(loadSpecFile(write('s.json', JSON.stringify(expected))).spec).toEqual(expected);
    expect(loadSpecFile(write('s.json5', "// c\n{name: 'w', jobs: [{name: 'a', command: 'echo a',},],}")).spec).toEqual(expected);
    expect(loadSpecFile(write('s.yaml', 'name: w\njobs:\n  - name: a\n    command: echo a\n')).spec).toEqual(expected);
    expect(loadSpecFile(write('s.yml', 'name: w\njobs: [{name: a, command: echo a}]\n')).spec).toEqual(expected);
    expect(specFormatOf('x.JSON')).toBe('json');
    expect(specFormatOf('x.spec')).toBe('yaml');
  });

  it('a missing file, a directory, and a non-mapping are one line naming the path', () => {
    expect(() => loadSpecFile(join(dir, 'nope.yaml'))).toThrow(/^Spec file not found: .*nope\.yaml$/);
    const sub = join(dir, 'd.yaml');
    mkdirSync(sub);
    expect(() => loadSpecFile(sub)).toThrow(/is a directory/);
    expect(() => loadSpecFile(write('list.yaml', '- a\n- b\n'))).toThrow(/holds a list/);
    expect(() => loadSpecFile(write('empty.yaml', ''))).toThrow(/holds nothing/);
  });

  it('syntax errors name the file, and YAML errors the line and column', () => {
    expect(() => loadSpecFile(write('bad.yaml', 'name: x\njobs:\n  - name: a\n   command: b\n'))).toThrow(/bad\.yaml is not valid YAML \(line 4, column \d+\): .+/);
    expect(() => loadSpecFile(write('bad.json', '{"name": "x", "jobs": ['))).toThrow(/bad\.json is not valid JSON: /);
    expect(() => loadSpecFile(write('bad.json5', '{name: }'))).toThrow(/bad\.json5 is not valid JSON5: /);
    expect(() => parseSpecText('a: 1\na: 2\n', 'yaml', 'dup.yaml')).toThrow(/dup\.yaml is not valid YAML \(line 2.*unique/i);
    for (const text of ['x: [1, 2\n', 'x: "unterminated\n']) {
      let message = '';
      try {
        parseSpecText(text, 'yaml', 'f.yaml');
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^f\.yaml is not valid YAML/);
      expect(message).not.toContain('\n');
    }
  });
});

describe('tables', () => {
  it('aligns columns, right-aligns numbers, and flattens newlines in cells', () => {
    const text = formatTable(
      [
        { k: '1', name: 'preprocess', rc: 0 },
        { k: '22', name: 'multi\nline', rc: 127 },
      ],
      [
        { header: 'key', value: (r) => r.k },
        { header: 'name', value: (r) => r.name },
        { header: 'rc', value: (r) => r.rc, right: true },
      ],
    );
    expect(text.split('\n')).toEqual(['key  name         rc', '---  ----------  ---', '1    preprocess    0', '22   multi line  127', '']);
  });

  it('durations and sizes read naturally', () => {
    expect(formatDuration(0.5)).toBe('0.50s');
    expect(formatDuration(75)).toBe('1m15s');
    expect(formatDuration(7260)).toBe('2h01m');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 2 ** 30)).toBe('3.0 GiB');
  });

  it('a done job is failed when its result has a non-zero return code', () => {
    expect(outcomeOf('done', { _key: 'r', _id: 'results/r', _rev: '1', return_code: 0 })).toBe('succeeded');
    expect(outcomeOf('done', { _key: 'r', _id: 'results/r', _rev: '1', return_code: 2 })).toBe('failed');
    expect(outcomeOf('canceled', undefined)).toBe('canceled');
    expect(outcomeOf('terminated', { _key: 'r', _id: 'results/r', _rev: '1', return_code: -15 })).toBe('terminated');
  });
});
