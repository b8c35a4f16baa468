// Streams a request body to a file, refusing it (413) past the limit, so a large upload
// never sits in memory.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CellhostError, diskFullError } from '../core/errors.ts';

export interface SavedUpload {
  file: string;
  bytes: number;
  head: Buffer;
}

export async function saveUpload(body: ReadableStream<Uint8Array> | null, dir: string, maxBytes: number): Promise<SavedUpload> {
  if (!body) throw new CellhostError('ERR_BODY_MISSING', 'send the source as a tar.gz or zip body, or JSON {"git": URL, "ref": REF}');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${crypto.randomBytes(8).toString('hex')}.upload`);
  const out = fs.createWriteStream(file);
  // a write error (ENOSPC) must reject this upload, not crash the process as an unhandled event
  let writeError: Error | null = null;
  out.on('error', (err) => {
    writeError = err;
    out.emit('drain');
  });
  let bytes = 0;
  let head = Buffer.alloc(0);
  try {
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > maxBytes) {
        await reader.cancel();
        throw new CellhostError('ERR_BODY_TOO_LARGE', `the upload is larger than the limit of ${Math.round(maxBytes / 1024 / 1024)} MB`);
      }
      if (head.length < 8) head = Buffer.concat([head, Buffer.from(value.subarray(0, 8))]);
      if (writeError) throw writeError;
      if (!out.write(value)) await new Promise<void>((r) => out.once('drain', () => r()));
      if (writeError) throw writeError;
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err || writeError ? reject(err ?? writeError) : resolve())));
    if (bytes === 0) throw new CellhostError('ERR_BODY_MISSING', 'the upload is empty');
    return { file, bytes, head };
  } catch (err) {
    out.destroy();
    fs.rmSync(file, { force: true });
    throw diskFullError(err) ?? err;
  }
}
