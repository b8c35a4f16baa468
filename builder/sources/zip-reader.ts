// Reads a zip into a SourceTree through yauzl (central directory, zip64, entry-size checks); entry
// types come from the Unix mode in the external attributes when the zip was made on Unix.
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { CellhostError, describeError } from '../../runtime/core/errors.ts';
import { refuseEntry } from './entry-path.ts';
import { tooLarge, type SourceLimits, type SourceTree } from './source-tree.ts';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const MAX_LINK_TARGET = 4096;

// yauzl refuses bad names itself, before we see the entry; keep its verdict but say it our way.
const YAUZL_NAME_ERRORS: Array<[RegExp, string]> = [
  [/^absolute path: (.*)$/s, 'has an absolute path'],
  [/^invalid relative path: (.*)$/s, "escapes the source root ('..' in its path)"],
  [/^invalid characters in fileName: (.*)$/s, 'has invalid characters in its name'],
];

function mapZipError(err: unknown, entryName?: string): Error {
  if (err instanceof CellhostError) return err;
  const message = describeError(err);
  for (const [pattern, reason] of YAUZL_NAME_ERRORS) {
    const m = pattern.exec(message);
    if (m) return refuseEntry(m[1], reason);
  }
  const where = entryName === undefined ? 'the zip archive' : `zip entry '${entryName}'`;
  return new CellhostError('ERR_SOURCE_INVALID', `${where} is corrupt or truncated (${message})`, { cause: err });
}

/**
 * Re-throws stream errors (bad deflate data, size mismatch) as a corrupt-entry error naming the
 * entry. yauzl's stream starts inflating as soon as it is opened, so an error can come before the
 * body is read: it is held by a listener attached at once, never left unhandled.
 */
function guardStream(stream: Readable): () => unknown {
  let failure: unknown;
  stream.on('error', (err) => {
    failure ??= err;
  });
  return () => failure;
}

async function* namedBody(stream: Readable, name: string, failure: () => unknown): AsyncGenerator<Buffer> {
  try {
    if (failure() !== undefined) throw failure();
    for await (const chunk of stream) yield chunk as Buffer;
    if (failure() !== undefined) throw failure();
  } catch (err) {
    throw mapZipError(err, name);
  } finally {
    stream.destroy();
  }
}

async function readLinkTarget(stream: Readable, name: string, failure: () => unknown): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of namedBody(stream, name, failure)) {
    size += chunk.length;
    if (size > MAX_LINK_TARGET) throw refuseEntry(name, 'is a symlink with a target longer than 4096 bytes');
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}

export async function readZipInto(file: string, tree: SourceTree, limits: SourceLimits, signal?: AbortSignal): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, decodeStrings: true, validateEntrySizes: true });
  } catch (err) {
    throw new CellhostError('ERR_SOURCE_INVALID', `the upload is not a valid zip archive (${describeError(err)})`, { cause: err });
  }
  try {
    if (zip.entryCount > limits.maxEntries) {
      throw tooLarge(`the source has more than ${limits.maxEntries} entries (${zip.entryCount} in the zip)`, { maxEntries: limits.maxEntries });
    }
    const entries = zip.eachEntry();
    for (;;) {
      signal?.throwIfAborted();
      let next: IteratorResult<yauzl.Entry>;
      try {
        next = await entries.next();
      } catch (err) {
        throw mapZipError(err);
      }
      if (next.done) break;
      const entry = next.value;
      const name = entry.fileName;
      // Finder's resource-fork shadows: never part of a project.
      if (name === '__MACOSX/' || name.startsWith('__MACOSX/')) continue;

      const mode = entry.externalFileAttributes >>> 16;
      const type = mode & S_IFMT;
      if (name.endsWith('/') || type === S_IFDIR) {
        await tree.addDirectory(name);
      } else if (type === S_IFLNK || type === 0 || type === S_IFREG) {
        if (entry.isEncrypted()) throw refuseEntry(name, 'is encrypted');
        let stream: Readable;
        try {
          stream = await zip.openReadStreamPromise(entry);
        } catch (err) {
          throw mapZipError(err, name);
        }
        const failure = guardStream(stream);
        try {
          if (type === S_IFLNK) await tree.addSymlink(name, await readLinkTarget(stream, name, failure));
          else await tree.addFile(name, mode, namedBody(stream, name, failure), entry.uncompressedSize);
        } finally {
          stream.destroy(); // an entry refused before its body was read still holds the stream open
        }
      } else {
        throw refuseEntry(name, 'is a device file, fifo or socket');
      }
    }
  } finally {
    zip.close();
  }
}
