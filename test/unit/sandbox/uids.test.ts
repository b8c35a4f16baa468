import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkImageAccess, DEFAULT_UID_RANGE, findUidRangeConflicts, parseUidRange } from '../../../runtime/sandbox/uids.ts';

describe('parseUidRange', () => {
  it('reads FIRST-LAST', () => {
    expect(parseUidRange('2000000000-2000065535')).toEqual({ first: 2000000000, last: 2000065535 });
  });
  it('refuses system uids, nobody, reversed and oversize ranges', () => {
    for (const bad of ['0-100', '500-2000', '60000-70000', '5000-4000', '1000-4294967295', 'abc']) {
      expect(() => parseUidRange(bad), bad).toThrow();
    }
  });
});

describe('findUidRangeConflicts', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reports accounts and subordinate ranges inside the range', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cellhost-uids-'));
    await writeFile(path.join(dir, 'passwd'), 'root:x:0:0::/root:/bin/bash\nodd:x:2000000005:100::/:/bin/false\n');
    await writeFile(path.join(dir, 'group'), 'root:x:0:\n');
    await writeFile(path.join(dir, 'subuid'), 'alice:100000:65536\nbob:1999990000:65536\n');
    // no subgid file at all: not an error
    const found = await findUidRangeConflicts(DEFAULT_UID_RANGE, dir);
    expect(found).toEqual(['/etc/passwd: odd has id 2000000005', '/etc/subuid: bob owns 1999990000-2000055535']);
  });
});

describe('checkImageAccess', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('passes a 0755/0644 tree and names every entry the uid could write or not read', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cellhost-image-'));
    await chmod(dir, 0o755);
    await mkdir(path.join(dir, 'lib'), { mode: 0o755 });
    await writeFile(path.join(dir, 'lib', 'a.js'), 'x', { mode: 0o644 });
    await symlink('/etc/passwd', path.join(dir, 'link'));
    const uid = process.getuid!() + 12345;
    expect(await checkImageAccess(dir, uid)).toEqual([]);

    await chmod(path.join(dir, 'lib', 'a.js'), 0o666);
    await writeFile(path.join(dir, 'private'), 'x', { mode: 0o600 });
    await mkdir(path.join(dir, 'closed'), { mode: 0o700 });
    const problems = await checkImageAccess(dir, uid);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^lib\/a\.js: writable by group or others/),
        'private: file not readable by others',
        'closed: directory not readable and searchable by others',
      ]),
    );
    // owned by the service itself: writable whatever the mode
    expect(await checkImageAccess(dir, process.getuid!())).toEqual(expect.arrayContaining([expect.stringMatching(/^\.: owned by the service/)]));
  });
});
