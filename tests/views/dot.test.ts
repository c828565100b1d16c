import { instance } from '@viz-js/viz';
import { describe, expect, it } from 'vitest';
import { dotQuote, renderDot } from '../../graph/dot.js';

const viz = await instance();

interface VizJson {
  name: string;
  label?: string;
  objects?: { name: string; label?: string }[];
  edges?: { tail: number; head: number; label?: string }[];
}

/** Render with Graphviz (viz.js); fails the test on any syntax error. */
function parse(dot: string): VizJson {
  const r = viz.render(dot, { format: 'json' });
  expect(r.status, JSON.stringify(r.errors)).toBe('success');
  expect(r.errors.filter((e) => e.level === 'error')).toEqual([]);
  return JSON.parse(r.output ?? '{}') as VizJson;
}

describe('dotQuote', () => {
  it('escapes quotes and backslashes and turns line breaks into \\n', () => {
    expect(dotQuote('a "b" \\c\nd')).toBe('"a \\"b\\" \\\\c\\nd"');
  });
});

describe('renderDot', () => {
  it('gives DOT that Graphviz parses, whatever the names, with every node and edge', () => {
    const names = ['plain', 'with space', 'quo"te', 'back\\slash', 'brace{}; -> x [label=y]', 'ünïcödé ✓', '\\N', '', '"', 'trailing\\'];
    const nodes = names.map((label, i) => ({ id: `jobs/${i}`, label }));
    const edges = names.slice(1).map((_, i) => ({ from: `jobs/${i}`, to: `jobs/${i + 1}`, label: 'blocks' }));
    const g = parse(renderDot('job_job_dependencies', 'Job - "Job" Dependencies', nodes, edges));
    expect(g.name).toBe('job_job_dependencies');
    expect(g.objects?.map((o) => o.name)).toEqual(nodes.map((n) => n.id));
    expect(g.edges).toHaveLength(edges.length);
    // the labels Graphviz reads back are the names (backslash escapes kept as written)
    const labels = g.objects?.map((o) => o.label) ?? [];
    expect(labels[1]).toBe('with space');
    expect(labels[2]).toBe('quo"te');
    expect(labels[5]).toBe('ünïcödé ✓');
  });

  it('the unquoted labels Torc wrote are rejected by Graphviz (what quoting fixes)', () => {
    const r = viz.render('strict digraph "g" {\n "jobs/1" [label=with space];\n}');
    expect(r.status).toBe('failure');
  });

  it('keeps a line break in a name as a DOT line break, not a syntax error', () => {
    const g = parse(renderDot('g', 't', [{ id: 'files/1', label: 'two\nlines' }], []));
    expect(g.objects?.[0]?.label).toBe('two\\nlines');
  });
});
