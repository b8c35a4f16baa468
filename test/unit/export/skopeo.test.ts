import { describe, expect, it } from 'vitest';
import { skopeoReason } from '../../../runtime/export/skopeo.ts';

describe('skopeoReason', () => {
  it("keeps skopeo's own message out of its log line, unescaped", () => {
    const line = 'time="2026-12-03T10:00:00Z" level=fatal msg="writing blob: initiating layer upload to /v2/a/blobs/uploads/ in r:5000: StatusCode: 405, \\"Method not allowed\\"\\n"';
    expect(skopeoReason(`some progress\n${line}\n`)).toBe('writing blob: initiating layer upload to /v2/a/blobs/uploads/ in r:5000: StatusCode: 405, "Method not allowed"');
    expect(skopeoReason('plain failure\n')).toBe('plain failure');
    expect(skopeoReason('')).toBe('no output');
  });
});
