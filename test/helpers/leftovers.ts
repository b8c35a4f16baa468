// What test and bench platforms left on the host when their process died without closing them (a
// vitest worker killed at a timeout, a crash, a bench stopped twice with Ctrl-C): their instances'
// cgroups, network namespaces, veths, nftables table and the mounts under their host run dir.
// Their names carry the dead process's pid, so no later platform takes them over; vitest's global
// setup (vitest.config.ts) and the bench (test/bench/run.ts) reclaim them before they start
// anything. The reclaiming is the platform's own: a server started with the same names removes what
// is left under them as it starts, and everything of its own as it closes. A set whose owner still
// runs (another test or bench run on this host) is left alone.
import fs from 'node:fs';
import { benchServerNames, childServerNames, testServerNames } from './server-names.ts';
import { alive, claimTestSubnet } from './subnets.ts';

const RUN = '/run';

/** the host names of each test or bench platform whose host run dir is still there */
export function serversLeft(): { dir: string; names: Record<string, string> }[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(RUN);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const test = /^cellhost-test-(\d+)-([0-7])$/.exec(name);
    if (test) return [{ dir: `${RUN}/${name}`, names: testServerNames(Number(test[1]), Number(test[2])) }];
    const child = /^cellhost-child-(\d+)$/.exec(name);
    if (child) return [{ dir: `${RUN}/${name}`, names: childServerNames(Number(child[1])) }];
    const bench = /^cellhost-bench-(\d+)-(\d+)$/.exec(name);
    if (bench) return [{ dir: `${RUN}/${name}`, names: benchServerNames(Number(bench[1]), Number(bench[2])) }];
    return [];
  });
}

/** reclaims what dead test and bench platforms left; a live one's (the pid in its owner.pid runs) is left alone */
export async function reclaimDeadServers(log: (line: string) => void = () => {}): Promise<string[]> {
  if (process.getuid?.() !== 0) return [];
  const reclaimed: string[] = [];
  let subnet: string | null = null;
  for (const { dir, names } of serversLeft()) {
    if (ownerRuns(dir)) continue;
    // the platform is loaded only when there is something to reclaim: this runs in vitest's own
    // process, or the bench's
    const { startTestServer } = await import('./server.ts');
    let server: Awaited<ReturnType<typeof startTestServer>>;
    try {
      server = await startTestServer({ isolation: { ...names, CELLHOST_NETNS_SUBNET: (subnet ??= claimTestSubnet()) } });
    } catch (err) {
      log(`could not reclaim what the platform of ${dir} left: ${(err as Error).message}`);
      continue;
    }
    await server.close();
    reclaimed.push(dir);
    log(`reclaimed what a dead platform left under ${dir}`);
  }
  return reclaimed;
}

/** the pid in the dir's owner.pid runs, or there is none yet (a server starting) */
function ownerRuns(dir: string): boolean {
  try {
    return alive(Number(fs.readFileSync(`${dir}/owner.pid`, 'utf8').trim().split(/\s+/)[0]));
  } catch {
    return true;
  }
}

/** vitest's global setup */
export async function setup(): Promise<void> {
  await reclaimDeadServers((line) => console.warn(line));
}
