// Which unpacker an uploaded body needs. Magic bytes win over the declared content type, which
// clients often get wrong (application/octet-stream for everything).

export type ArchiveKind = 'tar.gz' | 'zip';

const GZIP_MAGIC = [0x1f, 0x8b];
const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
const ZIP_EMPTY_MAGIC = [0x50, 0x4b, 0x05, 0x06]; // end-of-central-directory only: an empty zip

const TAR_TYPES = new Set([
  'application/gzip',
  'application/x-gzip',
  'application/x-tar',
  'application/x-gtar',
  'application/x-compressed-tar',
  'application/tar+gzip',
]);
const ZIP_TYPES = new Set(['application/zip', 'application/x-zip', 'application/x-zip-compressed', 'multipart/x-zip']);

function startsWith(head: Buffer, magic: number[]): boolean {
  return head.length >= magic.length && magic.every((b, i) => head[i] === b);
}

/**
 * 'tar.gz' for gzip (and for an uncompressed tar, which the tar unpacker also reads), 'zip' for a
 * zip, null when neither the bytes nor the content type say which.
 */
export function detectArchiveKind(contentType: string | undefined, head: Buffer): ArchiveKind | null {
  if (head.length === 0) return null;
  if (startsWith(head, GZIP_MAGIC)) return 'tar.gz';
  if (startsWith(head, ZIP_MAGIC) || startsWith(head, ZIP_EMPTY_MAGIC)) return 'zip';
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar.gz';
  const type = contentType?.split(';', 1)[0].trim().toLowerCase();
  if (type && TAR_TYPES.has(type)) return 'tar.gz';
  if (type && ZIP_TYPES.has(type)) return 'zip';
  return null;
}
