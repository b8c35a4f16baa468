// The one layer an exported image adds to its base: the live build at /app, owned by root and
// readable by everyone (as the build left it here: dirs 0755, files 0644 or 0755), an empty
// world-writable /tmp for a read-only root to mount over, and the links the base needs.
import fs from 'node:fs';
import { Header, PackSync, ReadEntry, WriteEntryTar, type WriteEntry } from 'tar';

/** a directory or link entry that is not on disk */
function syntheticEntry(data: { path: string; type: 'Directory' | 'SymbolicLink'; mode: number; linkpath?: string }): ReadEntry {
  const entry = new ReadEntry(new Header({ ...data, size: 0, mtime: new Date(0) }));
  entry.end();
  return entry;
}

const normalizedMode = (type: string, mode: number) =>
  type === 'Directory' ? 0o755 : type === 'File' || type === 'Link' ? (mode & 0o111 ? 0o755 : 0o644) : mode & 0o7777;

/**
 * Writes the layer as an uncompressed tar (umoci compresses it). Paths from the build become
 * app/…, hard links keep pointing inside app/, symlinks are stored as they are; devices, fifos
 * and sockets (which a build cannot leave in an image here) are left out. node-tar's synchronous
 * packer: its asynchronous one can stall or write after its end on trees with hard links
 * (isaacs/node-tar#460), and an export is a command with nothing else to do meanwhile.
 */
export function writeAppLayer(imageDir: string, file: string, links: Record<string, string> = {}): void {
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    writeLayer(imageDir, fd, links);
  } finally {
    fs.closeSync(fd);
  }
}

function writeLayer(imageDir: string, fd: number, links: Record<string, string>): void {
  const pack = new PackSync({
    cwd: imageDir,
    // uid/gid 0 and no atime/ctime: the owner is the image's root, whoever built it here
    portable: true,
    filter: (_p, st) => !('isFile' in st) || st.isFile() || st.isDirectory() || st.isSymbolicLink(),
    onWriteEntry(entry: WriteEntry) {
      if (entry instanceof WriteEntryTar) {
        if (entry.path === 'tmp/') entry.mode = 0o1777;
        return;
      }
      const rel = entry.path === '.' || entry.path === './' ? '' : entry.path.replace(/^\.\//, '');
      entry.path = rel ? `app/${rel}` : 'app/';
      if (entry.type === 'Link' && entry.linkpath) entry.linkpath = `app/${entry.linkpath.replace(/^\.\//, '')}`;
      if (entry.stat) entry.stat.mode = (entry.stat.mode & ~0o7777) | normalizedMode(entry.type ?? '', entry.stat.mode);
    },
  });
  pack.on('data', (chunk: Buffer) => fs.writeSync(fd, chunk));
  pack.write(syntheticEntry({ path: 'tmp/', type: 'Directory', mode: 0o1777 }));
  for (const [at, target] of Object.entries(links)) {
    pack.write(syntheticEntry({ path: at.replace(/^\/+/, ''), type: 'SymbolicLink', mode: 0o777, linkpath: target }));
  }
  pack.add('.');
  pack.end();
}
