import { describe, expect, it } from 'vitest';
import { compileIgnoreRules } from '../../../../builder/sources/ignore-rules.ts';

describe('compileIgnoreRules', () => {
  const rules = compileIgnoreRules(
    [
      '# comment',
      '',
      '*.log',
      '!keep.log',
      '/secret/',
      'build/',
      'docs/*.md',
      '**/fixtures/**',
      'tmp?.txt',
      'data/[0-9]*.csv',
      '  spaced.txt  ',
    ].join('\n'),
  );

  it('matches bare names at any depth', () => {
    expect(rules('app.log', false)).toBe(true);
    expect(rules('a/b/app.log', false)).toBe(true);
    expect(rules('a/keep.log', false)).toBe(false);
    expect(rules('spaced.txt', false)).toBe(true);
  });

  it('anchors patterns with a slash and honours directory-only patterns', () => {
    expect(rules('secret', true)).toBe(true);
    expect(rules('secret', false)).toBe(false);
    expect(rules('a/secret', true)).toBe(false);
    expect(rules('build', true)).toBe(true);
    expect(rules('src/build', true)).toBe(true);
    expect(rules('build', false)).toBe(false);
    expect(rules('docs/a.md', false)).toBe(true);
    expect(rules('docs/sub/a.md', false)).toBe(false);
  });

  it('supports **, ? and character classes', () => {
    expect(rules('test/fixtures/x/y.json', false)).toBe(true);
    expect(rules('fixtures/y.json', false)).toBe(true);
    expect(rules('tmp1.txt', false)).toBe(true);
    expect(rules('tmp12.txt', false)).toBe(false);
    expect(rules('data/2024.csv', false)).toBe(true);
    expect(rules('data/x.csv', false)).toBe(false);
  });

  it('matches nothing when empty', () => {
    expect(compileIgnoreRules('')('anything', false)).toBe(false);
  });
});
