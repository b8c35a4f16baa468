import { describe, expect, it } from 'vitest';
import { parseMountPointsUnder } from '../../../runtime/sandbox/bind-stage.ts';

describe('parseMountPointsUnder', () => {
  const info = [
    '22 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
    '80 22 254:0 /root/.rustup/toolchains/stable /run/cellhost/binds/stable-abc ro,relatime - ext4 /dev/vda rw',
    '81 80 254:0 /root/x\\040y /run/cellhost/binds/stable-abc/sub ro,relatime - ext4 /dev/vda rw',
    '82 22 254:0 /opt /run/cellhost/bindsX ro - ext4 /dev/vda rw',
    '83 22 0:5 / /run/cellhost/binds/with\\040space ro - tmpfs tmpfs rw',
    '',
  ].join('\n');

  it('lists mounts strictly under the dir, deepest first, unescaped', () => {
    const found = parseMountPointsUnder(info, '/run/cellhost/binds');
    expect([...found].sort()).toEqual([
      '/run/cellhost/binds/stable-abc',
      '/run/cellhost/binds/stable-abc/sub',
      '/run/cellhost/binds/with space',
    ]);
    expect(found.indexOf('/run/cellhost/binds/stable-abc/sub')).toBeLessThan(found.indexOf('/run/cellhost/binds/stable-abc'));
  });
});
