// Build logs keep a build's output up to a byte limit, and the platform's own lines always.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogHub } from '../../../builder/log-hub.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cellhost-loghub-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('build log limit', () => {
  it('keeps output up to the limit, says once where it was cut, keeps the platform lines after it', () => {
    const hub = createLogHub(dir);
    const log = hub.open('d-1', undefined, { bytes: 1024, owner: "the hobby plan's" });
    const seen: string[] = [];
    hub.follow('d-1', { onChunk: (t) => seen.push(t), onEnd: () => {} });
    log.note('==> start\n');
    for (let i = 0; i < 100; i++) log.write('x'.repeat(99) + '\n');
    log.note('==> Build finished\n');
    log.end();
    const stored = fs.readFileSync(path.join(dir, 'd-1.log'), 'utf8');
    expect(hub.read('d-1')).toBe(stored);
    expect(seen.join('')).toBe(stored);
    const output = stored.slice('==> start\n'.length, stored.indexOf('\x1b[0m\r\n'));
    expect(Buffer.byteLength(output)).toBe(1024);
    expect(stored).toMatch(/Build output past 1 KB is not kept \(the hobby plan's build log limit\)/);
    expect(stored.match(/is not kept/g)).toHaveLength(1);
    expect(stored).toContain('==> Build finished');
    expect(stored).toMatch(/8\.\d KB of build output left out of this log/);
  });

  it('cuts a multi-byte character whole, never in half', () => {
    const hub = createLogHub(dir);
    // a, b, then the 3-byte €: 4 bytes hold "ab" and a third of a €
    const log = hub.open('d-2', undefined, { bytes: 4, owner: "the hobby plan's" });
    log.write('ab€€');
    log.end();
    expect(hub.read('d-2')!.startsWith('ab\x1b[0m')).toBe(true);
  });

  it('without a limit, keeps everything', () => {
    const hub = createLogHub(dir);
    const log = hub.open('d-3');
    log.write('y'.repeat(100_000));
    log.end();
    expect(hub.read('d-3')).toBe('y'.repeat(100_000));
  });

  it('removes a finished log', async () => {
    const hub = createLogHub(dir);
    const log = hub.open('d-4');
    log.write('x');
    await expect(hub.remove('d-4')).rejects.toThrow(/still being written/);
    log.end();
    await hub.remove('d-4');
    expect(hub.read('d-4')).toBeNull();
  });
});
