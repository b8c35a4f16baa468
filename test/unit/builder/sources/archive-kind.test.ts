import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { detectArchiveKind } from '../../../../builder/sources/index.ts';
import { makeTar, makeZip } from './archive-fixtures.ts';

describe('detectArchiveKind', () => {
  it('trusts the magic bytes over the content type', async () => {
    const tgz = gzipSync(makeTar([{ path: 'a', data: 'x' }]));
    const zip = await makeZip([{ name: 'a', data: 'x' }]);
    expect(detectArchiveKind('application/octet-stream', tgz)).toBe('tar.gz');
    expect(detectArchiveKind('application/zip', tgz)).toBe('tar.gz');
    expect(detectArchiveKind(undefined, zip)).toBe('zip');
    expect(detectArchiveKind('application/gzip', zip)).toBe('zip');
    expect(detectArchiveKind(undefined, Buffer.from([0x50, 0x4b, 0x05, 0x06, 0, 0]))).toBe('zip');
  });

  it('recognises a plain tar by its ustar magic', () => {
    expect(detectArchiveKind(undefined, makeTar([{ path: 'a', data: 'x' }]).subarray(0, 512))).toBe('tar.gz');
  });

  it('falls back to the content type, parameters and case ignored', () => {
    expect(detectArchiveKind('Application/X-GZIP; charset=binary', Buffer.from('??'))).toBe('tar.gz');
    expect(detectArchiveKind('application/x-zip-compressed', Buffer.from('??'))).toBe('zip');
    expect(detectArchiveKind('text/plain', Buffer.from('hello'))).toBeNull();
    expect(detectArchiveKind(undefined, Buffer.from('hello'))).toBeNull();
  });

  it('says nothing about an empty body', () => {
    expect(detectArchiveKind('application/zip', Buffer.alloc(0))).toBeNull();
  });
});
