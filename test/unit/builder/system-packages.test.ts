// Which build commands get a system layer, and a failed build's own words for why it failed.
import { describe, expect, it } from 'vitest';
import { aptNetworkFailure, createTail, failureLine, usesSystemPackages } from '../../../builder/system-packages.ts';

describe('usesSystemPackages', () => {
  it('sees apt-get, apt, aptitude and dpkg run as commands, anywhere in a line', () => {
    for (const cmd of [
      'apt-get update && apt-get install -y libsm6 libxext6 libxrender-dev\npip install tensorflow pillow',
      'apt install -y ffmpeg',
      'set -e; dpkg -i vendor/tool.deb',
      'sudo apt-get install -y libpq5',
      'DEBIAN_FRONTEND=noninteractive\napt-get -qq install -y fonts-dejavu',
      'npm ci && (cd native && aptitude install -y foo)',
      'if ! command -v convert; then apt-get install -y imagemagick; fi',
    ]) {
      expect(usesSystemPackages(cmd), cmd).toBe(true);
    }
  });

  it('not a word inside another, a path, a comment or nothing', () => {
    for (const cmd of [null, undefined, '', 'npm ci', 'pip install -r requirements.txt', 'echo zapt-getx', './apt-get-mirror.sh', '# apt-get install -y x\nnpm ci', 'cat aptitude.txt', 'go build ./cmd/dpkgstat']) {
      expect(usesSystemPackages(cmd), String(cmd)).toBe(false);
    }
  });
});

describe('a failed build in its own words', () => {
  it("apt's last E: line, even with colours and progress redraws after it", () => {
    const out = 'Reading package lists... 0%\rReading package lists... Done\r\n\x1b[1;31mE: \x1b[0mUnable to locate package nope\r\n';
    expect(failureLine(out)).toBe('E: Unable to locate package nope');
  });

  it("dpkg's error with the line naming the failed maintainer script", () => {
    const out = [
      'Setting up probe (1.0) ...',
      'mount: /tmp: permission denied.',
      '\x1b[1mdpkg:\x1b[0m error processing package probe (--install):',
      ' installed probe package post-installation script subprocess returned error exit status 32',
      'Errors were encountered while processing:',
      ' probe',
    ].join('\r\n');
    expect(failureLine(out)).toBe('dpkg: error processing package probe (--install): installed probe package post-installation script subprocess returned error exit status 32');
  });

  it('otherwise the last line that says something, clipped', () => {
    expect(failureLine('compiling\nerror: x is undefined\n\n')).toBe('error: x is undefined');
    expect(failureLine('\n \n')).toBeNull();
    expect(failureLine('x'.repeat(1000))!.length).toBe(300);
  });

  it('names a mirror apt could not reach', () => {
    const out = 'Err:1 http://10.255.0.1/debian bookworm InRelease\r\n  Could not connect to 10.255.0.1:80 (10.255.0.1), connection timed out\r\n';
    expect(aptNetworkFailure(out)).toBe("apt could not reach the package mirror from the build's network (Could not connect to 10.255.0.1:80 (10.255.0.1), connection timed out)");
    expect(aptNetworkFailure('Err:1 http://deb.example bookworm InRelease\n  Temporary failure resolving \'deb.example\'')).toContain("Temporary failure resolving 'deb.example'");
    expect(aptNetworkFailure('E: Unable to locate package nope')).toBeNull();
  });

  it('keeps only the tail of a long output', () => {
    const t = createTail(10);
    t.push('0123456789');
    t.push('abc');
    expect(t.text()).toBe('3456789abc');
  });
});
