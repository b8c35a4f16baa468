// Reads a tar (gzip-compressed or plain) entry by entry into a SourceTree. Parsing headers is left to
// the `tar` package's Header and Pax; the loop is ours so every entry is checked before it is
// written, bodies are counted as they stream, and reading stops at the end-of-archive marker.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { Header, Pax, type HeaderData } from 'tar';
import { CellhostError, describeError } from '../../runtime/core/errors.ts';
import { refuseEntry } from './entry-path.ts';
import { tooLarge, type SourceLimits, type SourceTree } from './source-tree.ts';
import { StreamReader } from './stream-reader.ts';

const BLOCK = 512;
const MAX_META_BYTES = 1024 * 1024; // pax and GNU long-name bodies; a real one is a few KB
// Room for headers, padding and long names on top of the file bytes, before the decompressed
// stream itself counts as a bomb.
const OVERHEAD_PER_ENTRY = 8 * 1024;

function corrupt(what: string, cause?: unknown): CellhostError {
  return new CellhostError('ERR_SOURCE_INVALID', `the tar archive is corrupt or truncated (${what})`, { cause });
}

/** True for a block that carries a plausible tar header: 'ustar' magic or a valid checksum. */
export function looksLikeTarHeader(block: Buffer): boolean {
  if (block.length < BLOCK) return false;
  if (block.subarray(257, 262).toString('latin1') === 'ustar') return true;
  try {
    const h = new Header(block);
    return h.cksumValid && !!h.path;
  } catch {
    return false;
  }
}

async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export async function readTarInto(file: string, tree: SourceTree, limits: SourceLimits, signal?: AbortSignal): Promise<void> {
  const head = await readHead(file, BLOCK);
  const isGzip = head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
  if (!isGzip && !looksLikeTarHeader(head)) {
    throw new CellhostError('ERR_SOURCE_INVALID', 'the upload is not a gzip-compressed tar archive');
  }

  const input = createReadStream(file, { highWaterMark: 256 * 1024 });
  const gunzip = isGzip ? createGunzip({ chunkSize: 256 * 1024 }) : null;
  const stream = gunzip ? input.pipe(gunzip) : input;
  // pipe() does not forward errors: a read failure must still end the gunzip side.
  if (gunzip) input.on('error', (err) => gunzip.destroy(err));

  const cap = limits.maxBytes + (limits.maxEntries + 16) * OVERHEAD_PER_ENTRY;
  const reader = new StreamReader(
    stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>,
    (total) => {
      if (total > cap) throw tooLarge(`the archive decompresses to more than ${cap} bytes`, { maxBytes: limits.maxBytes });
    },
    (err) => corrupt(isGzip ? `gzip: ${describeError(err)}` : describeError(err), err),
  );

  let ex: HeaderData | undefined;
  let gex: HeaderData | undefined;
  let metaHeaders = 0;
  let sawEntry = false;
  const truncated = () => corrupt('it ends in the middle of an entry');

  try {
    for (;;) {
      signal?.throwIfAborted();
      const block = await reader.read(BLOCK, truncated);
      if (block === null) break; // no end marker, but cut at an entry boundary: what was read is whole
      const header = new Header(block, 0, ex, gex);
      if (header.nullBlock) break; // end-of-archive marker; whatever follows is never read
      if (!header.cksumValid) throw corrupt(sawEntry ? 'bad header checksum' : 'not a tar archive');
      const size = header.size;
      if (size === undefined || !Number.isSafeInteger(size)) throw corrupt('bad size field');
      const padding = (BLOCK - (size % BLOCK)) % BLOCK;
      const type = header.typeKey;

      if (type === 'x' || type === 'X' || type === 'g' || type === 'L' || type === 'N' || type === 'K') {
        if (++metaHeaders > 4 * limits.maxEntries + 16) throw tooLarge(`the archive has more than ${limits.maxEntries} entries`);
        if (size > MAX_META_BYTES) throw corrupt(`an extended header of ${size} bytes`);
        const body = (await reader.read(size, truncated)) ?? Buffer.alloc(0);
        await reader.skip(padding, truncated);
        const text = body.toString('utf8');
        if (type === 'g') gex = Pax.parse(text, gex, true);
        else if (type === 'x' || type === 'X') ex = Pax.parse(text, ex, false);
        else if (type === 'K') ex = { ...ex, linkpath: text.replace(/\0.*/s, '') };
        else ex = { ...ex, path: text.replace(/\0.*/s, '') };
        continue;
      }

      // A pax or GNU long name replaces the whole name, ustar prefix included; Header would glue
      // the prefix back on and drop a long link target, so both are taken from `ex` here.
      const name = ex?.path ?? header.path ?? '';
      const linkpath = ex?.linkpath ?? header.linkpath ?? '';
      ex = undefined;
      sawEntry = true;
      if (!name) throw corrupt('an entry without a name');
      switch (type) {
        case '0':
        case '7':
          await tree.addFile(name, header.mode ?? 0o644, reader.chunks(size, truncated), size);
          break;
        case '5':
          await tree.addDirectory(name);
          break;
        case '2':
          await tree.addSymlink(name, linkpath);
          await reader.skip(size, truncated);
          break;
        case '1':
          await tree.addHardlink(name, linkpath);
          await reader.skip(size, truncated);
          break;
        case '3':
        case '4':
        case '6':
          throw refuseEntry(name, 'is a device file or fifo');
        default:
          throw refuseEntry(name, `has an unsupported tar entry type '${String.fromCharCode(block[156])}'`);
      }
      await reader.skip(padding, truncated);
    }
  } finally {
    input.destroy();
    gunzip?.destroy();
  }
}
