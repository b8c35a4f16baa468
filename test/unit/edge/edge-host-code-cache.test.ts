// The edge host's code cache: the build's step writes V8's cache of the bundle without running it,
// and a cold start compiles from it; a cache this node refuses, or none, still serves the module.
// Real node processes running runtime/edge/edge-host.mjs on loopback.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { EDGE_HOST_NODE } from '../../../runtime/sandbox/edge-tools.ts';
import { tempDir, waitFor } from '../../helpers/server.ts';
import { freePortSync } from '../../helpers/subprocess-server.ts';

const HOST = fileURLToPath(new URL('../../../runtime/edge/edge-host.mjs', import.meta.url));
const [NODE, ...FLAGS] = EDGE_HOST_NODE;

// what a bundle may hold: built-ins and a relative file imported statically, import.meta,
// top-level await, and a side effect at import that the cache step must not run
const MODULE = `import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { word } from './later.mjs';
fs.appendFileSync(new URL('./imported.log', import.meta.url), 'imported\\n');
const extra = await Promise.resolve('tla');
export default {
  async fetch(request) {
    const hash = createHash('sha256').update(word).digest('hex').slice(0, 8);
    return Response.json({ word, hash, extra, file: import.meta.filename, url: import.meta.url });
  },
};
`;
// a module importing at run time, which Node 20 cannot do from cached data
const DYNAMIC = `export default { async fetch() { const { word } = await import('./later.mjs'); return Response.json({ word }); } };\n`;

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) await new Promise((resolve) => c.once('exit', resolve).kill('SIGKILL'));
  }
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function app(module = MODULE): { dir: string; entry: string } {
  const dir = tempDir('cellhost-edge-cache-');
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, '.cellhost'));
  fs.writeFileSync(path.join(dir, '.cellhost', 'edge.mjs'), module);
  fs.writeFileSync(path.join(dir, '.cellhost', 'later.mjs'), "export const word = 'later';\n");
  return { dir, entry: path.join(dir, '.cellhost', 'edge.mjs') };
}

/** the edge host serving `entry`: its serving line and its answer to GET / */
async function serve(entry: string): Promise<{ line: string; body: any; stderr: string }> {
  const port = await freePortSync();
  const child = spawn(NODE, [...FLAGS, HOST, entry], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`the edge host exited (${code}): ${stderr}`)));
  });
  const res = await fetch(`http://127.0.0.1:${port}/`);
  return { line, body: await res.json(), stderr };
}

/** the process has used no CPU for 300 ms: booted, and blocked on its stdin */
async function waitIdle(pid: number): Promise<void> {
  const cpu = () => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).join(' ');
  let last = cpu();
  let since = Date.now();
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 25));
    const now = cpu();
    if (now !== last) [last, since] = [now, Date.now()];
    else if (Date.now() - since >= 300) return;
  }
  throw new Error(`process ${pid} kept using CPU for 20 s`);
}

describe('the edge host and V8 code cache', () => {
  it('the build step writes the cache without running the module; a cold start compiles from it and the module works as imported', async () => {
    const { dir, entry } = app();
    const out = execFileSync(NODE, [...FLAGS, HOST, '--write-code-cache', entry], { encoding: 'utf8' });
    expect(out).toMatch(/^edge: code cache of .*edge\.mjs written \(\d+ bytes\)\n$/);
    expect(fs.statSync(`${entry}.cache`).size).toBeGreaterThan(100);
    // compiled, not run: the module's side effect did not happen
    expect(fs.existsSync(path.join(dir, '.cellhost', 'imported.log'))).toBe(false);

    const served = await serve(entry);
    expect(served.line).toMatch(/serving on \d+ \(compiled from its code cache\)$/);
    expect(served.body).toEqual({ word: 'later', hash: '1d9283d8', extra: 'tla', file: entry, url: `file://${entry}` });
    expect(fs.readFileSync(path.join(dir, '.cellhost', 'imported.log'), 'utf8')).toBe('imported\n');
    // the vm modules' experimental warning is the host's own business
    expect(served.stderr).not.toContain('ExperimentalWarning');
  });

  it("the cache holds the code of functions the import does not call, so a first request does not compile them", async () => {
    // a handler of 300 statements that nothing calls at import: V8 compiles only the top level
    // unless told, and such a cache is a few hundred bytes; with the handler's bytecode, kilobytes
    let body = '';
    for (let i = 0; i < 300; i++) body += `  n = (n * ${i + 3} + ${i}) % 1000003;\n`;
    const { entry } = app(`export default { fetch() { let n = 1;\n${body}  return Response.json({ n }); } };\n`);
    execFileSync(NODE, [...FLAGS, HOST, '--write-code-cache', entry], { encoding: 'utf8' });
    expect(fs.statSync(`${entry}.cache`).size).toBeGreaterThan(5000);
    // and the node of a cold start, with V8's default flags, accepts it
    const served = await serve(entry);
    expect(served.line).toMatch(/\(compiled from its code cache\)$/);
    expect(typeof served.body.n).toBe('number');
  });

  it('held (a standby): it compiles the module ahead and runs none of it; told to go, it evaluates what it compiled', async () => {
    const { dir, entry } = app();
    execFileSync(NODE, [...FLAGS, HOST, '--write-code-cache', entry], { encoding: 'utf8' });
    const port = await freePortSync();
    const child = spawn(NODE, [...FLAGS, HOST, '--held', entry], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    let stdout = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    await waitIdle(child.pid!);
    // waiting: nothing of the module ran
    expect(fs.existsSync(path.join(dir, '.cellhost', 'imported.log'))).toBe(false);
    expect(stdout).toBe('');
    // it listens already: a request made now waits for the module, and is answered by it
    let early: any = null;
    const asked = fetch(`http://127.0.0.1:${port}/`).then(async (r) => (early = await r.json()));
    await new Promise((r) => setTimeout(r, 200));
    expect(early).toBeNull();
    // what it compiled is what it runs: the bundle and its cache are not read again at go
    fs.renameSync(entry, `${entry}.gone`);
    fs.renameSync(`${entry}.cache`, `${entry}.cache.gone`);
    child.stdin!.end('\n');
    await waitFor(() => stdout.includes('\n') || stderr, { what: 'its serving line' });
    expect(stderr).toBe('');
    expect(stdout).toMatch(/serving on \d+ \(compiled from its code cache\)\n$/);
    await asked;
    expect(early).toMatchObject({ word: 'later', hash: '1d9283d8', extra: 'tla' });
    const body = await (await fetch(`http://127.0.0.1:${port}/`)).json();
    expect(body).toMatchObject({ word: 'later', hash: '1d9283d8', extra: 'tla' });
    expect(fs.readFileSync(path.join(dir, '.cellhost', 'imported.log'), 'utf8')).toBe('imported\n');
  });

  it('held with a module that imports only built-ins: linked ahead, and what it linked survives a garbage collection while it waits', async () => {
    // Node 20 keeps nothing alive between a module's link and its evaluation: a standby whose
    // node collected garbage while it waited (an idle node does, after ~10 s) crashed at the go
    // line with SIGSEGV. A node of this test's collects on SIGUSR2.
    const { dir, entry } = app(`import { createHash } from 'node:crypto';
import fs from 'node:fs';
fs.appendFileSync(new URL('./imported.log', import.meta.url), 'imported\\n');
export default { fetch: () => Response.json({ hash: createHash('sha256').update('later').digest('hex').slice(0, 8) }) };
`);
    execFileSync(NODE, [...FLAGS, HOST, '--write-code-cache', entry], { encoding: 'utf8' });
    const port = await freePortSync();
    const gcOnSignal = "data:text/javascript,process.on('SIGUSR2',()=>globalThis.gc())";
    const child = spawn(NODE, [...FLAGS, '--expose-gc', `--import=${gcOnSignal}`, HOST, '--held', entry], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    await waitIdle(child.pid!);
    child.kill('SIGUSR2');
    await waitIdle(child.pid!);
    expect(fs.existsSync(path.join(dir, '.cellhost', 'imported.log'))).toBe(false);
    child.stdin!.end('\n');
    const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(`exited (${code ?? signal})`)));
    const outcome = await Promise.race([waitFor(() => stdout.includes('\n'), { what: 'its serving line' }).then(() => 'serving'), exited]);
    expect(outcome, stderr).toBe('serving');
    expect((await (await fetch(`http://127.0.0.1:${port}/`)).json()).hash).toBe('1d9283d8');
  });

  it('held, and let go unused (stdin closed): it exits 0 without running the module', async () => {
    const { dir, entry } = app();
    execFileSync(NODE, [...FLAGS, HOST, '--write-code-cache', entry], { encoding: 'utf8' });
    const child = spawn(NODE, [...FLAGS, HOST, '--held', entry], { env: { PATH: process.env.PATH ?? '', PORT: String(await freePortSync()) }, stdio: ['pipe', 'ignore', 'ignore'] });
    children.push(child);
    await waitIdle(child.pid!);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin!.end();
    expect(await exited).toBe(0);
    expect(fs.existsSync(path.join(dir, '.cellhost', 'imported.log'))).toBe(false);
  });

  it('a cache this node refuses (another node, another file, garbage): compiled anew and served', async () => {
    const { entry } = app();
    fs.writeFileSync(`${entry}.cache`, 'not V8 data');
    const served = await serve(entry);
    expect(served.line).toMatch(/\(its code cache was refused by this node: compiled\)$/);
    expect(served.body.word).toBe('later');
  });

  it('a module that calls import() gets no cache, and is imported as any module', async () => {
    const { entry } = app(DYNAMIC);
    const out = execFileSync(NODE, [...FLAGS, HOST, '--write-code-cache', entry], { encoding: 'utf8' });
    expect(out).toMatch(/no code cache for .*: the module calls import\(\) at run time/);
    expect(fs.existsSync(`${entry}.cache`)).toBe(false);
    const served = await serve(entry);
    expect(served.line).toMatch(/serving on \d+$/);
    expect(served.body).toEqual({ word: 'later' });
  });

  it('no cache: imported as any module', async () => {
    const { entry } = app();
    const served = await serve(entry);
    expect(served.line).toMatch(/serving on \d+$/);
    expect(served.body).toMatchObject({ word: 'later', extra: 'tla' });
  });
});
