// A /24 for a test platform's network namespaces that no other test process alive uses. A
// platform refuses a subnet that overlaps an address the host already has, so two test servers
// alive at once with the same subnet leave the second one without its sandbox (it then runs apps
// unsandboxed, and a test that needs the sandbox fails for a reason it does not show). Subnets
// were picked from the pid (10.x.<pid % 250>), and two vitest workers whose pids agreed modulo
// 250 collided. Now each is claimed by an atomic mkdir under /run, owned by a pid: a claim whose
// process is gone is taken over, and a process drops its claims when it exits.
import fs from 'node:fs';
import path from 'node:path';

const CLAIMS = '/run/cellhost-test-subnets';
// 10.214.0.0 to 10.222.255.0: what the test servers used before (the bench and the soak use
// 10.223 and 10.224)
const FIRST_OCTET2 = 214;
const SLOTS = 9 * 256;

const mine: string[] = [];
let exitHook = false;

/** the process runs (or is another user's): its claims and names are its own */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryClaim(dir: string): boolean {
  try {
    fs.mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    let owner = NaN;
    try {
      owner = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8'));
    } catch {
      // made a moment ago, its pid not written yet: someone else's
      return false;
    }
    if (owner === process.pid || alive(owner)) return false;
    // a process that died without dropping it: take it over (one winner, by rename)
    const stale = `${dir}.stale-${process.pid}`;
    try {
      fs.renameSync(dir, stale);
    } catch {
      return false;
    }
    fs.rmSync(stale, { recursive: true, force: true });
    return tryClaim(dir);
  }
  fs.writeFileSync(path.join(dir, 'pid'), String(process.pid));
  return true;
}

/** a subnet (`10.x.y.0/24`) no other live test process holds, held until this process exits */
export function claimTestSubnet(): string {
  try {
    fs.mkdirSync(CLAIMS, { recursive: true, mode: 0o755 });
  } catch {
    // not root: no network namespaces are made, so no subnet is used; any name will do
    return `10.${FIRST_OCTET2}.${process.pid % 256}.0/24`;
  }
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const dir of mine) fs.rmSync(dir, { recursive: true, force: true });
    });
  }
  const start = (process.pid * 7) % SLOTS;
  for (let i = 0; i < SLOTS; i++) {
    const slot = (start + i) % SLOTS;
    const dir = path.join(CLAIMS, String(slot));
    if (!tryClaim(dir)) continue;
    mine.push(dir);
    return `10.${FIRST_OCTET2 + Math.floor(slot / 256)}.${slot % 256}.0/24`;
  }
  throw new Error(`every test subnet under ${CLAIMS} is claimed by a live process`);
}

/**
 * vitest's global teardown (vitest.config.ts): workers are stopped without their exit handlers,
 * so the claims of processes that are gone are dropped here, and the directory once it is empty.
 */
export function teardown(): void {
  let slots: string[];
  try {
    slots = fs.readdirSync(CLAIMS);
  } catch {
    return;
  }
  for (const slot of slots) {
    const dir = path.join(CLAIMS, slot);
    let owner = NaN;
    try {
      owner = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8'));
    } catch {
      // no pid: a claim being made (left to its owner), or one whose process died between the
      // mkdir and writing its pid, which nothing would ever take over
      if (Date.now() - statMs(dir) > 60_000) fs.rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (!alive(owner)) fs.rmSync(dir, { recursive: true, force: true });
  }
  try {
    fs.rmdirSync(CLAIMS);
  } catch {
    // a live process still holds a claim
  }
}

function statMs(dir: string): number {
  try {
    return fs.statSync(dir).mtimeMs;
  } catch {
    return Date.now();
  }
}
