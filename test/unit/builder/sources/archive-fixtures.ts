// Builds archives byte by byte for the unpacker tests (including the malicious ones no normal tool
// would write) and a temp layout with a canary directory beside the build dir.
import { lstat, mkdir, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, gzipSync } from 'node:zlib';
import { Header, Pax } from 'tar';
import yazl from 'yazl';

export type TarType = 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO' | 'GlobalExtendedHeader';

export interface TarEntrySpec {
  path: string;
  type?: TarType;
  data?: Buffer | string;
  mode?: number;
  linkpath?: string;
}

function pad(buf: Buffer): Buffer {
  const rest = buf.length % 512;
  return rest === 0 ? buf : Buffer.concat([buf, Buffer.alloc(512 - rest)]);
}

export function tarHeader(spec: TarEntrySpec & { size?: number }): Buffer {
  const type = spec.type ?? 'File';
  const size = spec.size ?? (type === 'File' ? Buffer.byteLength(spec.data ?? '') : 0);
  const fields = {
    path: spec.path,
    type,
    mode: spec.mode ?? (type === 'Directory' ? 0o755 : 0o644),
    size,
    linkpath: spec.linkpath,
    uid: 0,
    gid: 0,
    mtime: new Date(0),
  };
  const header = new Header(fields);
  const needPax = header.encode();
  const block = header.block as Buffer;
  if (!needPax) return block;
  const pax = new Pax({ path: spec.path, linkpath: spec.linkpath }).encode();
  return Buffer.concat([pax, block]);
}

/** A plain tar (uncompressed) of the given entries, with the two end blocks unless told not to. */
export function makeTar(entries: TarEntrySpec[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(tarHeader(e));
    if ((e.type ?? 'File') === 'File' && e.data !== undefined) parts.push(pad(Buffer.from(e.data)));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function makeTarGz(entries: TarEntrySpec[]): Buffer {
  return gzipSync(makeTar(entries));
}

export interface RawZipEntry {
  name: string;
  data?: Buffer | string;
  /** Unix mode with type bits, e.g. 0o100644; stored in the external attributes. */
  mode?: number;
}

/** A stored (uncompressed) zip written by hand, for names yazl would refuse to write. */
export function makeRawZip(entries: RawZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const data = Buffer.from(e.data ?? '');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(0, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(0, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((e.mode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

export interface YazlEntry {
  name: string;
  data?: Buffer | string;
  mode?: number;
  dir?: boolean;
}

export async function makeZip(entries: YazlEntry[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries) {
    if (e.dir) zip.addEmptyDirectory(e.name, e.mode === undefined ? {} : { mode: e.mode });
    else zip.addBuffer(Buffer.from(e.data ?? ''), e.name, e.mode === undefined ? {} : { mode: e.mode });
  }
  zip.end();
  const parts: Buffer[] = [];
  for await (const chunk of zip.outputStream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

export interface Layout {
  root: string;
  /** The build dir handed to unpackSource: exists and is empty. */
  dest: string;
  /** A sibling holding a file an escaping entry would hit. */
  canary: string;
  upload: (name: string, body: Buffer) => Promise<string>;
  /** Every path under root except inside dest, with its type: compared before and after. */
  outsideDest: () => Promise<string[]>;
  cleanup: () => Promise<void>;
}

async function walk(dir: string, rel: string, skip: string, out: string[]): Promise<void> {
  for (const name of (await readdir(dir)).sort()) {
    const abs = join(dir, name);
    const r = rel ? `${rel}/${name}` : name;
    const st = await lstat(abs);
    if (st.isSymbolicLink()) out.push(`${r} -> ${await readlink(abs)}`);
    else out.push(`${r} ${st.isDirectory() ? 'dir' : `file ${st.size}`}`);
    if (st.isDirectory() && abs !== skip) await walk(abs, r, skip, out);
  }
}

export async function makeLayout(): Promise<Layout> {
  const root = await mkdtemp(join(tmpdir(), 'cellhost-sources-'));
  const dest = join(root, 'builds', 'dest');
  const canary = join(root, 'builds', 'canary');
  const uploads = join(root, 'uploads');
  await mkdir(dest, { recursive: true });
  await mkdir(canary, { recursive: true });
  await mkdir(uploads);
  await writeFile(join(canary, 'secret'), 'canary');
  return {
    root,
    dest,
    canary,
    async upload(name, body) {
      const file = join(uploads, name);
      await writeFile(file, body);
      return file;
    },
    async outsideDest() {
      const out: string[] = [];
      await walk(root, '', dest, out);
      return out;
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** Relative paths under dir with their types, modes for files, targets for links. */
export async function describeTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (abs: string, rel: string) => {
    for (const name of (await readdir(abs)).sort()) {
      const p = join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(p);
      if (st.isSymbolicLink()) out.push(`${r} -> ${await readlink(p)}`);
      else if (st.isDirectory()) {
        out.push(`${r}/`);
        await visit(p, r);
      } else out.push(`${r} ${(st.mode & 0o7777).toString(8)} ${st.size}`);
    }
  };
  await visit(dir, '');
  return out;
}
