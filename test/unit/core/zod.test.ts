// Schemas get `.openapi()` only when @hono/zod-openapi's extension ran before they were made, so
// every module takes zod from runtime/core/zod.ts. A direct import would work or not depending on
// which module loads first (it broke `cellhost` itself while the test runner's order hid it).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.tsx?$/.test(e.name))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}

describe('zod comes from one module', () => {
  it('no source file imports zod directly (types aside)', () => {
    const offenders = ['runtime', 'builder', 'ui']
      .flatMap(sources)
      .filter((f) => f !== path.join('runtime', 'core', 'zod.ts'))
      .filter((f) => /^import\s+(?!type\b)[^;]*from\s+'zod'/m.test(fs.readFileSync(path.join(ROOT, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('the CLI entry loads (its import verb loads the service settings before the API)', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'runtime/main.ts', 'version'], { cwd: ROOT, encoding: 'utf8' });
    expect(out).toMatch(/^cellhost \d/);
  });
});
