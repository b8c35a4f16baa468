// A pool of prepared network namespaces, one per running instance: its own address, so every
// app listens on its serving port without clashing, and no way to the host or its neighbours.
//
// Address plan: each namespace gets one /30 of the pool's subnet: .1 is the host end of its veth,
// .2 the app (eth0 inside), so every app listens on the same port (8080) at its own address and
// the router connects to appAddr. Default subnet 10.213.0.0/16 (16 384 namespaces). Why there:
// home and office LANs use 192.168.0.0/16 and the bottom of 10/8 (10.0.x, 10.1.x, 10.10.x);
// Docker's default pools are 172.17–172.31 and 192.168; Kubernetes defaults to 10.96.0.0/12,
// 10.244.0.0/16 (flannel), 10.42/10.43 (k3s); AWS's default VPC is 172.31; Tailscale and
// carrier-grade NAT use 100.64.0.0/10. 10.213/16 is in none of them. It is a setting, and
// start() refuses a subnet that overlaps a route or address the host already has.
// Names: namespace `<prefix>-ns<i>`, host veth `<prefix>-v<i>` (≤ 15 chars), nft table
// `cellhost_<prefix>`; another prefix (tests use their own) never touches these.
//
// Lifecycle: warm namespaces are prepared in the background so acquire() usually only hands one
// out (plus a tc call when its bandwidth differs from what it was shaped for). A released
// namespace is destroyed, never reused, and slot indexes rotate, so an address is not handed to a
// new instance while a stale connection to the old one could still be in flight.
// Shaping (bandwidth follows memory, netns-addr.ts): tbf on the host veth shapes traffic towards the app, tbf on eth0 inside
// the namespace shapes traffic from it; each direction is shaped where it leaves.
import { constants } from 'node:fs';
import { access, readdir, readFile } from 'node:fs/promises';
import { CellhostError, describeError } from '../core/errors.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import {
  assertPrefix,
  hostIfName,
  ipToNumber,
  nsName,
  parseNameservers,
  parseOwnedName,
  parseSubnet,
  slotAddrs,
  slotCount,
  subnetsOverlap,
  tbfArgs,
  type Subnet,
} from './netns-addr.ts';
import { createFirewall, detectNatBackend, type Firewall, type NatBackend } from './netns-firewall.ts';
import { quoteShell, runChecked, runCommand } from './run-command.ts';

export { bandwidthForMemory } from './netns-addr.ts';

export const DEFAULT_NETNS_SUBNET = '10.213.0.0/16';
export const DEFAULT_NETNS_PREFIX = 'ch';
const NETNS_DIR = '/run/netns';
/** how long after a lease the pool starts preparing its replacement */
const REFILL_DELAY_MS = 300;

export interface NetnsLease {
  name: string;
  nsPath: string;
  appAddr: string;
  hostAddr: string;
  hostIf: string;
  bandwidthMbit: number;
  /** ['nsenter', '--net=<nsPath>', '--', ...argv]: run as root, before setpriv */
  enterArgv(argv: readonly string[]): string[];
}

export interface NetnsPool {
  /** reclaims leftovers, installs the firewall, starts filling the warm pool */
  start(): Promise<void>;
  acquire(opts: { bandwidthMbit: number }): Promise<NetnsLease>;
  /** destroys the namespace; a fresh one takes its place in the warm pool */
  release(lease: NetnsLease): Promise<void>;
  /** destroys every namespace (warm and leased) and the firewall rules */
  close(): Promise<void>;
  /** removes namespaces, veths and rules with this prefix that this pool does not hold */
  reclaimLeftovers(): Promise<void>;
  /** prepared namespaces ready to hand out */
  size(): number;
  stats(): { warm: number; leased: number; preparing: number; nat: NatBackend | null };
}

export interface NetnsPoolOptions {
  prefix?: string;
  subnet?: string;
  /** prepared namespaces to keep ready (default 2) */
  warm?: number;
  log?: Logger;
  ipBin?: string;
  tcBin?: string;
  nsenterBin?: string;
  /** force a NAT backend instead of detecting one */
  nat?: NatBackend;
  /** IPv4 CIDRs instances may reach although they are private or special (CELLHOST_EGRESS_ALLOW) */
  egressAllow?: readonly string[];
  /** nameservers instances may query on port 53 wherever they are (default: /etc/resolv.conf's) */
  nameservers?: readonly string[];
}

interface Slot {
  index: number;
  name: string;
  hostIf: string;
  appAddr: string;
  hostAddr: string;
  rateMbit: number;
}

function toLease(slot: Slot, nsenterBin: string): NetnsLease {
  const nsPath = `${NETNS_DIR}/${slot.name}`;
  return {
    name: slot.name,
    nsPath,
    appAddr: slot.appAddr,
    hostAddr: slot.hostAddr,
    hostIf: slot.hostIf,
    bandwidthMbit: slot.rateMbit,
    enterArgv: (argv) => [nsenterBin, `--net=${nsPath}`, '--', ...argv],
  };
}

export function createNetnsPool(opts: NetnsPoolOptions = {}): NetnsPool {
  const prefix = opts.prefix ?? DEFAULT_NETNS_PREFIX;
  assertPrefix(prefix);
  const subnet: Subnet = parseSubnet(opts.subnet ?? DEFAULT_NETNS_SUBNET);
  const target = opts.warm ?? 2;
  const log = (opts.log ?? silentLogger).child({ component: 'netns', prefix });
  const ip = opts.ipBin ?? 'ip';
  const tc = opts.tcBin ?? 'tc';
  const nsenter = opts.nsenterBin ?? 'nsenter';
  const slots = slotCount(subnet);

  const warm: Slot[] = [];
  const leased = new Map<string, Slot>();
  const used = new Set<number>();
  const inFlight = new Set<Promise<unknown>>();
  let cursor = 0;
  let preparing = 0;
  let refilling = false;
  let backoffMs = 0;
  let backoffTimer: NodeJS.Timeout | undefined;
  let lastRate = 64;
  let firewall: Firewall | undefined;
  let backend: NatBackend | null = null;
  let started: Promise<void> | undefined;
  let closed = false;

  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => undefined);
    return p;
  };

  const takeIndex = (): number => {
    for (let n = 0; n < slots; n++) {
      const i = (cursor + n) % slots;
      if (!used.has(i)) {
        cursor = (i + 1) % slots;
        used.add(i);
        return i;
      }
    }
    throw new CellhostError('ERR_NETNS_SETUP', `all ${slots} namespaces of ${subnet.text} are in use`);
  };

  // Every step is one line of one /bin/sh: a spawn from the platform blocks its event loop for
  // 1.5–3 ms (fork of a large process, then the wait for exec), and a namespace used to take five.
  const shell = (lines: string[]): Promise<string> => runChecked('ERR_NETNS_SETUP', '/bin/sh', ['-ec', lines.join('\n')], { timeoutMs: 10_000 });
  const line = (argv: string[]): string => argv.map(quoteShell).join(' ');
  // ip reads a batch of its own commands from a here-document: one exec for several steps
  const ipBatch = (argv: string[], commands: string[]): string[] => [`${line(argv)} <<'END'`, ...commands, 'END'];

  const shapeLines = (slot: Slot, rateMbit: number): string[] => {
    const args = tbfArgs(rateMbit);
    return [line([tc, 'qdisc', 'replace', 'dev', slot.hostIf, 'root', ...args]), line([tc, '-n', slot.name, 'qdisc', 'replace', 'dev', 'eth0', 'root', ...args])];
  };

  const shape = async (slot: Slot, rateMbit: number): Promise<void> => {
    await shell(shapeLines(slot, rateMbit));
    slot.rateMbit = rateMbit;
  };

  const destroy = async (slot: Slot): Promise<void> => {
    // deleting the host end takes the pair down at once; deleting the namespace alone would leave
    // the veth until the kernel's namespace cleanup runs
    const r = await runCommand(ip, ['-force', '-batch', '-'], {
      input: `link del ${slot.hostIf}\nnetns del ${slot.name}\n`,
      timeoutMs: 10_000,
    });
    if (r.code !== 0) log.warn('netns.destroy_incomplete', { name: slot.name, stderr: r.stderr.trim() });
    used.delete(slot.index);
  };

  const create = async (rateMbit: number): Promise<Slot> => {
    const index = takeIndex();
    const { hostAddr, appAddr } = slotAddrs(subnet, index);
    const slot: Slot = { index, name: nsName(prefix, index), hostIf: hostIfName(prefix, index), hostAddr, appAddr, rateMbit };
    try {
      await shell([
        // addrgenmode none before up: no IPv6 link-local on either end, so no IPv6 path at all
        ...ipBatch([ip, '-batch', '-'], [
          `netns add ${slot.name}`,
          `link add ${slot.hostIf} type veth peer name eth0 netns ${slot.name}`,
          `link set ${slot.hostIf} addrgenmode none`,
          `addr add ${hostAddr}/30 dev ${slot.hostIf}`,
          `link set ${slot.hostIf} up`,
        ]),
        ...ipBatch([ip, '-n', slot.name, '-batch', '-'], [
          'link set lo up',
          'link set eth0 addrgenmode none',
          `addr add ${appAddr}/30 dev eth0`,
          'link set eth0 up',
          `route add default via ${hostAddr}`,
        ]),
        // the app is unprivileged: let it listen on any port (80 too), as it could on its own machine
        line([nsenter, `--net=${NETNS_DIR}/${slot.name}`, '--', 'sysctl', '-q', '-w', 'net.ipv4.ip_unprivileged_port_start=0']),
        ...shapeLines(slot, rateMbit),
      ]);
      slot.rateMbit = rateMbit;
      return slot;
    } catch (err) {
      await destroy(slot);
      throw err;
    }
  };

  const refill = (): void => {
    if (refilling || closed || backoffTimer || !started) return;
    refilling = true;
    const loop = async (): Promise<void> => {
      try {
        // one at a time: preparing namespaces must not compete with cold starts for the CPU
        while (!closed && warm.length < target) {
          preparing++;
          try {
            const slot = await track(create(lastRate));
            if (closed) await destroy(slot);
            else warm.push(slot);
            backoffMs = 0;
          } finally {
            preparing--;
          }
        }
      } catch (err) {
        backoffMs = Math.min(Math.max(backoffMs * 2, 1000), 30_000);
        log.warn('netns.refill_failed', { error: describeError(err), retryInMs: backoffMs });
        backoffTimer = setTimeout(() => {
          backoffTimer = undefined;
          refill();
        }, backoffMs).unref();
      } finally {
        refilling = false;
      }
    };
    void track(loop());
  };

  const ownedNow = (): Set<string> => {
    const names = new Set<string>();
    for (const s of [...warm, ...leased.values()]) names.add(s.name).add(s.hostIf);
    return names;
  };

  const reclaimLeftovers = async (): Promise<void> => {
    const owned = ownedNow();
    const nsNames = (await readdir(NETNS_DIR).catch(() => [] as string[])).filter(
      (n) => parseOwnedName(prefix, 'ns', n) !== undefined && !owned.has(n),
    );
    const links = await runChecked('ERR_NETNS_SETUP', ip, ['-o', 'link', 'show'], { timeoutMs: 10_000 });
    const ifNames = links
      .split('\n')
      .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
      .filter((n): n is string => n !== undefined && parseOwnedName(prefix, 'if', n) !== undefined && !owned.has(n));
    if (nsNames.length + ifNames.length > 0) {
      const r = await runCommand(ip, ['-force', '-batch', '-'], {
        input: [...ifNames.map((n) => `link del ${n}`), ...nsNames.map((n) => `netns del ${n}`), ''].join('\n'),
        timeoutMs: 30_000,
      });
      if (r.code !== 0) log.warn('netns.reclaim_incomplete', { stderr: r.stderr.trim() });
      log.info('netns.reclaimed', { namespaces: nsNames.length, veths: ifNames.length });
    }
    // rules a previous run left, with whichever backend it used
    if (!firewall) {
      for (const b of ['nftables', 'iptables'] as const) {
        await createFirewall(b, { prefix, subnet }, log)
          .remove()
          .catch(() => undefined);
      }
    }
  };

  const assertSubnetFree = async (): Promise<void> => {
    const [routes, addrs] = await Promise.all([
      runChecked('ERR_NETNS_SETUP', ip, ['-j', '-4', 'route', 'show', 'table', 'all'], { timeoutMs: 10_000 }),
      runChecked('ERR_NETNS_SETUP', ip, ['-j', '-4', 'addr', 'show'], { timeoutMs: 10_000 }),
    ]);
    const seen: Array<{ cidr: string; dev: string }> = [];
    for (const r of JSON.parse(routes || '[]') as Array<{ dst?: string; dev?: string }>) {
      if (r.dst && r.dst !== 'default') seen.push({ cidr: r.dst.includes('/') ? r.dst : `${r.dst}/32`, dev: r.dev ?? '' });
    }
    for (const link of JSON.parse(addrs || '[]') as Array<{ ifname: string; addr_info?: Array<{ local: string; prefixlen: number }> }>) {
      for (const a of link.addr_info ?? []) seen.push({ cidr: `${a.local}/32`, dev: link.ifname });
    }
    for (const { cidr, dev } of seen) {
      if (parseOwnedName(prefix, 'if', dev) !== undefined) continue;
      const [addr, len] = cidr.split('/');
      let other: Subnet;
      try {
        const n = ipToNumber(addr!);
        const size = 2 ** (32 - Number(len));
        other = { base: n - (n % size), prefixLen: Number(len), text: cidr };
      } catch {
        continue; // a route format we do not parse cannot be judged either way
      }
      if (subnetsOverlap(subnet, other)) {
        throw new CellhostError(
          'ERR_NETNS_SETUP',
          `instance subnet ${subnet.text} overlaps ${cidr} on ${dev || 'the host'}: choose another subnet for the namespace pool`,
          { details: { subnet: subnet.text, clash: cidr, dev } },
        );
      }
    }
  };

  const start = (): Promise<void> => {
    started ??= (async () => {
      await assertSubnetFree();
      await reclaimLeftovers();
      if (opts.nat) backend = opts.nat;
      else {
        const d = await detectNatBackend();
        for (const note of d.notes) log.info('netns.nat_note', { note });
        backend = d.backend;
      }
      if (!backend) throw new CellhostError('ERR_NETNS_SETUP', 'neither nftables nor iptables is usable: instances would have no outbound network');
      let nameservers = opts.nameservers;
      if (!nameservers) {
        // the sandbox binds the host's /etc, so apps and builds ask the nameservers it names
        const found = parseNameservers(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
        if (found.loopback.length) log.warn('netns.dns_on_loopback', { nameservers: found.loopback, note: "instances and builds cannot reach a resolver on the host's loopback: name one on another address in /etc/resolv.conf" });
        nameservers = found.usable;
      }
      firewall = createFirewall(backend, { prefix, subnet, egressAllow: opts.egressAllow, nameservers }, log);
      await firewall.install();
      log.info('netns.started', { subnet: subnet.text, nat: backend, warm: target });
    })();
    const p = started;
    // a failed start may be retried (the host may get nft installed, a clashing route removed)
    void p.then(refill, () => {
      if (started === p) started = undefined;
    });
    return p;
  };

  return {
    start,
    async acquire({ bandwidthMbit }) {
      if (closed) throw new CellhostError('ERR_SHUTTING_DOWN', 'the namespace pool is closed');
      await start();
      lastRate = bandwidthMbit;
      // a namespace already shaped for this rate needs no tc call at all
      const match = warm.findIndex((s) => s.rateMbit === bandwidthMbit);
      const ready = match >= 0 ? warm.splice(match, 1)[0] : warm.shift();
      let slot: Slot;
      if (ready) {
        try {
          if (ready.rateMbit !== bandwidthMbit) await shape(ready, bandwidthMbit);
        } catch (err) {
          await destroy(ready);
          refill();
          throw err;
        }
        slot = ready;
      } else {
        slot = await track(create(bandwidthMbit));
      }
      if (closed) {
        await destroy(slot);
        throw new CellhostError('ERR_SHUTTING_DOWN', 'the namespace pool is closed');
      }
      leased.set(slot.name, slot);
      // later: spawning `ip` blocks the event loop and takes CPU the starting app needs (the bench
      // showed refills running during the very cold start that emptied the slot)
      setTimeout(refill, REFILL_DELAY_MS).unref();
      return toLease(slot, nsenter);
    },
    async release(lease) {
      const slot = leased.get(lease.name);
      if (!slot) return;
      leased.delete(lease.name);
      await destroy(slot);
      refill();
    },
    async close() {
      closed = true;
      if (backoffTimer) clearTimeout(backoffTimer);
      backoffTimer = undefined;
      await Promise.allSettled([...inFlight]);
      const all = [...warm.splice(0), ...leased.values()];
      leased.clear();
      await Promise.all(all.map((s) => destroy(s)));
      if (firewall) {
        await firewall.remove();
        log.info('netns.closed', { destroyed: all.length });
      }
    },
    reclaimLeftovers,
    size: () => warm.length,
    stats: () => ({ warm: warm.length, leased: leased.size, preparing, nat: backend }),
  };
}

export interface NetnsProbe {
  available: boolean;
  nat: NatBackend | null;
  reasons: string[];
}

/** Can this host give instances their own network? (root, ip with netns, tc, nsenter, NAT, forwarding) */
export async function probeNetns(): Promise<NetnsProbe> {
  const reasons: string[] = [];
  if (process.getuid?.() !== 0) reasons.push('not running as root: cannot create network namespaces (run cellhost as root)');
  const [ipV, tcV, nsenterV] = await Promise.all([
    runCommand('ip', ['-V'], { timeoutMs: 5000 }),
    runCommand('tc', ['-V'], { timeoutMs: 5000 }),
    runCommand('nsenter', ['--version'], { timeoutMs: 5000 }),
  ]);
  if (ipV.spawnError || ipV.code !== 0) reasons.push('ip not installed: apt-get install iproute2');
  if (tcV.spawnError || tcV.code !== 0) reasons.push('tc not installed (no bandwidth shaping): apt-get install iproute2');
  if (nsenterV.spawnError || nsenterV.code !== 0) reasons.push('nsenter not installed: apt-get install util-linux');
  const nat = await detectNatBackend();
  if (!nat.backend) reasons.push('neither nft nor iptables works (no outbound NAT): apt-get install nftables');
  const fwdWritable = await access('/proc/sys/net/ipv4/ip_forward', constants.W_OK).then(() => true, () => false);
  if (!fwdWritable) reasons.push('/proc/sys/net/ipv4/ip_forward is not writable (read-only /proc/sys in a container?)');
  return { available: reasons.length === 0, nat: nat.backend, reasons };
}
