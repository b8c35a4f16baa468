import { readdir } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unpackSource, type SourceInput } from '../../../../builder/sources/index.ts';
import { CellhostError } from '../../../../runtime/core/errors.ts';
import type { Logger, LogFields } from '../../../../runtime/core/log.ts';
import { describeTree, makeLayout, makeTarGz, makeZip, type Layout, type TarEntrySpec } from './archive-fixtures.ts';

const limits = { maxBytes: 1024 * 1024, maxEntries: 100 };
let layout: Layout;
beforeEach(async () => {
  layout = await makeLayout();
});
afterEach(async () => {
  await layout.cleanup();
});

const monorepo: TarEntrySpec[] = [
  { path: 'repo-main/package.json', data: '{}' },
  { path: 'repo-main/apps/web/index.js', data: 'web' },
  { path: 'repo-main/apps/web/lib/x.js', data: 'x' },
  { path: 'repo-main/apps/web/shared', type: 'SymbolicLink', linkpath: 'lib' },
  { path: 'repo-main/apps/api/server.js', data: 'api' },
  { path: 'repo-main/web', type: 'SymbolicLink', linkpath: 'apps/web' },
];

async function tarInput(entries: TarEntrySpec[]): Promise<SourceInput> {
  return { kind: 'tar.gz', file: await layout.upload('src.tar.gz', makeTarGz(entries)) };
}

async function expectRootRefused(input: SourceInput, rootDir: string, message: RegExp) {
  const before = await layout.outsideDest();
  const err = await unpackSource(input, layout.dest, { limits, rootDir }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CellhostError);
  expect((err as CellhostError).code).toBe('ERR_SOURCE_INVALID');
  expect((err as CellhostError).message).toMatch(message);
  expect(await layout.outsideDest()).toEqual(before);
  expect(await readdir(layout.dest)).toEqual([]);
}

describe('unpackSource: root directory', () => {
  it('keeps only the root directory, after stripping the archive wrapper', async () => {
    const result = await unpackSource(await tarInput(monorepo), layout.dest, { limits, rootDir: 'apps/web' });
    expect(await describeTree(layout.dest)).toEqual(['index.js 644 3', 'lib/', 'lib/x.js 644 1', 'shared -> lib']);
    expect(result).toEqual({ files: 3, bytes: 4 });
  });

  it('takes a leading slash and a trailing slash', async () => {
    await unpackSource(await tarInput(monorepo), layout.dest, { limits, rootDir: '/apps/api/' });
    expect(await describeTree(layout.dest)).toEqual(['server.js 644 3']);
  });

  it('works for zips too', async () => {
    const file = await layout.upload('src.zip', await makeZip([{ name: 'svc/app.py', data: 'x' }, { name: 'README', data: 'r' }]));
    await unpackSource({ kind: 'zip', file }, layout.dest, { limits, rootDir: 'svc' });
    expect(await describeTree(layout.dest)).toEqual(['app.py 644 1']);
  });

  it('refuses a root directory that escapes, is missing, is a file or is a symlink', async () => {
    const input = await tarInput(monorepo);
    await expectRootRefused(input, '../canary', /root directory '\.\.\/canary' escapes/);
    await expectRootRefused(input, 'apps/../../x', /escapes/);
    await expectRootRefused(input, 'apps/nope', /root directory 'apps\/nope' does not exist/);
    await expectRootRefused(input, 'package.json', /root directory 'package\.json' is a file, not a directory/);
    await expectRootRefused(input, 'web', /root directory 'web' is a symlink, not a directory/);
  });

  it('refuses a link that stays in the archive but leaves the chosen root', async () => {
    const input = await tarInput([...monorepo, { path: 'repo-main/apps/web/api', type: 'SymbolicLink', linkpath: '../api' }]);
    await expectRootRefused(input, 'apps/web', /'repo-main\/apps\/web\/api' is a symlink to '\.\.\/api', which points outside/);
    // The same archive is fine with the whole repository as the root.
    await unpackSource(input, layout.dest, { limits });
    expect(await readdir(layout.dest)).toEqual(['apps', 'package.json', 'web']);
  });

  it('refuses an empty root directory', async () => {
    const input = await tarInput([...monorepo, { path: 'repo-main/empty/', type: 'Directory' }]);
    await expectRootRefused(input, 'empty', /root directory 'empty' holds no files/);
  });
});

describe('unpackSource: logging and cancellation', () => {
  it('logs one event with the counts, and the refusal reason on failure', async () => {
    const events: Array<[string, LogFields | undefined]> = [];
    const log: Logger = {
      debug: () => {},
      info: (e, f) => events.push([e, f]),
      warn: (e, f) => events.push([e, f]),
      error: (e, f) => events.push([e, f]),
      child: () => log,
    };
    await unpackSource(await tarInput(monorepo), layout.dest, { limits, log });
    expect(events[0][0]).toBe('source.unpacked');
    expect(events[0][1]).toMatchObject({ kind: 'tar.gz', files: 6, bytes: 9 });
    await layout.cleanup();
    layout = await makeLayout();
    await unpackSource(await tarInput([{ path: '../x', data: 'x' }]), layout.dest, { limits, log }).catch(() => {});
    expect(events[1]).toEqual(['source.refused', expect.objectContaining({ code: 'ERR_SOURCE_INVALID', reason: expect.stringMatching(/'\.\.\/x'/) })]);
  });

  it('stops on an aborted signal and leaves the build dir empty', async () => {
    const ctl = new AbortController();
    ctl.abort();
    await expect(unpackSource(await tarInput(monorepo), layout.dest, { limits, signal: ctl.signal })).rejects.toThrow(/aborted/);
    expect(await readdir(layout.dest)).toEqual([]);
  });
});
