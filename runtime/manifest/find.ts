// Finds and reads the manifest at the root of an unpacked source. The source is untrusted (an
// upload or a clone), so it is read only through untrusted-files: no link, FIFO or device is
// followed or opened, and only so many bytes.
import { CellhostError } from '../core/errors.ts';
import { kindInside, readFileInside } from '../sandbox/untrusted-files.ts';
import { MANIFEST_FILES, MANIFEST_MAX_BYTES, type ManifestFile } from './manifest.ts';

export interface FoundManifest {
  file: ManifestFile;
  text: string;
}

/** the manifest at the root of `dir`, null when there is none; refused when there are two or it cannot be read */
export async function readManifestIn(dir: string): Promise<FoundManifest | null> {
  const present: ManifestFile[] = [];
  for (const file of MANIFEST_FILES) if ((await kindInside(dir, file)) !== null) present.push(file);
  if (present.length === 0) return null;
  if (present.length > 1) {
    throw new CellhostError('ERR_MANIFEST_INVALID', `both ${present.join(' and ')} are at the root of the source: keep one`, { details: { files: present } });
  }
  const file = present[0]!;
  const read = await readFileInside(dir, file, { maxBytes: MANIFEST_MAX_BYTES, timeoutMs: 5000 });
  if (!read.ok) throw new CellhostError('ERR_MANIFEST_INVALID', `${file} could not be read: ${read.reason}`, { details: { file } });
  return { file, text: decodeManifest(file, read.data) };
}

/** the file's text; a manifest is UTF-8 (TOML requires it, JSON files are) */
export function decodeManifest(file: string, data: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw new CellhostError('ERR_MANIFEST_INVALID', `${file} is not UTF-8 text`, { details: { file } });
  }
}
