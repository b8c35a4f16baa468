// What a system layer added to the host's packages, read from dpkg's status files.
import { describe, expect, it } from 'vitest';
import { describePackages, diffPackages, parseDpkgStatus } from '../../../runtime/sandbox/dpkg-status.ts';

const stanza = (name: string, version: string, status = 'install ok installed', arch = 'amd64') =>
  `Package: ${name}\nStatus: ${status}\nPriority: optional\nArchitecture: ${arch}\nVersion: ${version}\nDescription: ${name}\n two lines\n`;

describe('dpkg status', () => {
  it('lists installed packages only, foreign architectures named name:arch', () => {
    const text = [
      stanza('libc6', '2.36-9'),
      stanza('bash', '5.2.15-2'),
      stanza('tzdata', '2024a', 'install ok installed', 'all'),
      stanza('oldpkg', '1.0', 'deinstall ok config-files'),
      stanza('half', '1.0', 'install reinstreq half-installed'),
      stanza('libc6', '2.36-9', 'install ok installed', 'i386'),
    ].join('\n');
    expect([...parseDpkgStatus(text)]).toEqual([
      ['libc6', '2.36-9'],
      ['bash', '5.2.15-2'],
      ['tzdata', '2024a'],
      ['libc6:i386', '2.36-9'],
    ]);
  });

  it('a layer against the host: added, upgraded, removed, sorted by name', () => {
    const host = parseDpkgStatus([stanza('bash', '5.2'), stanza('libsm6', '1.2.3'), stanza('nano', '7.2')].join('\n'));
    const layer = parseDpkgStatus([stanza('bash', '5.2'), stanza('libsm6', '1.2.4'), stanza('hello', '2.10-3'), stanza('figlet', '2.2.5')].join('\n'));
    const d = diffPackages(host, layer);
    expect(d).toEqual({
      added: [
        { name: 'figlet', version: '2.2.5' },
        { name: 'hello', version: '2.10-3' },
      ],
      upgraded: [{ name: 'libsm6', from: '1.2.3', to: '1.2.4' }],
      removed: [{ name: 'nano', version: '7.2' }],
    });
    expect(describePackages(d.added)).toBe('figlet 2.2.5, hello 2.10-3');
    expect(describePackages(d.added, 1)).toBe('figlet 2.2.5 and 1 more');
    expect(diffPackages(host, host)).toEqual({ added: [], upgraded: [], removed: [] });
  });
});
