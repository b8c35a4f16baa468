// The host firewall for the namespace pool: outbound NAT plus the walls between instances.
//
// Every rule matches the pool's veths by name (`<prefix>-v*`), so one rule set covers every
// namespace and nothing is added or removed per instance. What it enforces:
// - instance → instance: dropped (forwarding between two pool veths);
// - instance → the host itself (any address, any port: the admin listener, the router, sshd):
//   dropped, except replies on connections the host opened (the router connects to instances);
// - instance → the pool's own subnet (another slot, or a released one, whose /30 route is gone
//   and whose packets would leave by the default route): dropped, whatever the allow list says;
// - instance → private and special ranges (EGRESS_BLOCKED: RFC 1918, carrier-grade NAT,
//   link-local with cloud metadata at 169.254.169.254, multicast, "this network", reserved):
//   dropped, so a homelab's router and NAS are out of reach. Ranges in `egressAllow`
//   (CELLHOST_EGRESS_ALLOW) are accepted before that, and so is DNS (udp/tcp 53) to the host's
//   nameservers (/etc/resolv.conf), which are often on a private address;
// - instance → IPv6: dropped (the veths carry no IPv6 addresses at all, so link-local fe80::/10
//   and ULA fc00::/7 are closed with the rest);
// - anything → instance through forwarding: only replies, so nothing outside can reach an
//   instance even with a route to the pool's subnet;
// - instance → elsewhere: forwarded and masqueraded behind the host's address.
// nftables: one `table inet cellhost_<prefix>`, created in one transaction, deleted on close.
// iptables (fallback, or when the host's FORWARD policy is DROP, as Docker sets it: an nft
// accept cannot override an iptables drop, a rule inside that chain can): chains named
// CH-<prefix>-IN/-FWD/-NAT jumped to from INPUT/FORWARD/POSTROUTING, removed on close.
// IPv4 forwarding (net.ipv4.ip_forward) is switched on and left on: other software on the host
// may rely on it from then on, so turning it off at close could break what we did not start.
import { writeFile } from 'node:fs/promises';
import { CellhostError, describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { Subnet } from './netns-addr.ts';
import { runChecked, runCommand } from './run-command.ts';

export type NatBackend = 'nftables' | 'iptables';

export interface FirewallOptions {
  prefix: string;
  subnet: Subnet;
  /** IPv4 CIDRs instances may reach even though they are in EGRESS_BLOCKED */
  egressAllow?: readonly string[];
  /** IPv4 nameservers instances and builds may query (port 53) even on a blocked range */
  nameservers?: readonly string[];
}

/** Where instances' traffic does not go unless allowed: private, shared, link-local and special IPv4 ranges. */
export const EGRESS_BLOCKED: readonly string[] = [
  '0.0.0.0/8', // "this network"
  '10.0.0.0/8', // RFC 1918
  '100.64.0.0/10', // carrier-grade NAT (RFC 6598), Tailscale
  '169.254.0.0/16', // link-local, cloud metadata
  '172.16.0.0/12', // RFC 1918
  '192.168.0.0/16', // RFC 1918
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, broadcast
];

export function nftTableName(prefix: string): string {
  return `cellhost_${prefix}`;
}

/** The nft script that (re)creates the pool's table in one atomic transaction. */
export function buildNftRuleset({ prefix, subnet, egressAllow = [], nameservers = [] }: FirewallOptions): string {
  const table = nftTableName(prefix);
  const veths = `"${prefix}-v*"`;
  const dns = nameservers.length ? `{ ${nameservers.join(', ')} }` : null;
  return [
    // declaring then deleting makes the delete valid whether or not the table exists yet
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    `  chain input {`,
    `    type filter hook input priority filter; policy accept;`,
    `    iifname ${veths} ct state established,related accept`,
    `    iifname ${veths} drop`,
    `  }`,
    `  chain forward {`,
    `    type filter hook forward priority filter; policy accept;`,
    `    iifname ${veths} oifname ${veths} drop`,
    `    iifname ${veths} ip daddr ${subnet.text} drop`,
    `    iifname ${veths} meta nfproto ipv6 drop`,
    ...(dns ? [`    iifname ${veths} ip daddr ${dns} udp dport 53 accept`, `    iifname ${veths} ip daddr ${dns} tcp dport 53 accept`] : []),
    // one rule per range: overlapping ranges in one set literal are an nft error
    ...egressAllow.map((cidr) => `    iifname ${veths} ip daddr ${cidr} accept`),
    `    iifname ${veths} ip daddr { ${EGRESS_BLOCKED.join(', ')} } drop`,
    `    oifname ${veths} ct state established,related accept`,
    `    oifname ${veths} drop`,
    `  }`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority srcnat; policy accept;`,
    `    ip saddr ${subnet.text} oifname != ${veths} masquerade`,
    `  }`,
    `}`,
    '',
  ].join('\n');
}

export function iptablesChains(prefix: string): { input: string; forward: string; nat: string } {
  return { input: `CH-${prefix}-IN`, forward: `CH-${prefix}-FWD`, nat: `CH-${prefix}-NAT` };
}

/** iptables-restore --noflush input that creates the chains and the jumps into them. */
export function buildIptablesRestore({ prefix, subnet, egressAllow = [], nameservers = [] }: FirewallOptions): string {
  const c = iptablesChains(prefix);
  const veths = `${prefix}-v+`;
  return [
    '*filter',
    `:${c.input} - [0:0]`,
    `:${c.forward} - [0:0]`,
    `-A ${c.input} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN`,
    `-A ${c.input} -j DROP`,
    `-A ${c.forward} -i ${veths} -o ${veths} -j DROP`,
    `-A ${c.forward} -i ${veths} -d ${subnet.text} -j DROP`,
    ...nameservers.flatMap((ns) => ['udp', 'tcp'].map((proto) => `-A ${c.forward} -i ${veths} -d ${ns}/32 -p ${proto} --dport 53 -j ACCEPT`)),
    ...egressAllow.map((cidr) => `-A ${c.forward} -i ${veths} -d ${cidr} -j ACCEPT`),
    ...EGRESS_BLOCKED.map((cidr) => `-A ${c.forward} -i ${veths} -d ${cidr} -j DROP`),
    `-A ${c.forward} -o ${veths} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
    `-A ${c.forward} -o ${veths} -j DROP`,
    `-A ${c.forward} -i ${veths} -j ACCEPT`,
    `-I INPUT 1 -i ${veths} -j ${c.input}`,
    `-I FORWARD 1 -j ${c.forward}`,
    'COMMIT',
    '*nat',
    `:${c.nat} - [0:0]`,
    `-A ${c.nat} -s ${subnet.text} ! -o ${veths} -j MASQUERADE`,
    `-I POSTROUTING 1 -j ${c.nat}`,
    'COMMIT',
    '',
  ].join('\n');
}

export interface Firewall {
  readonly backend: NatBackend;
  install(): Promise<void>;
  /** removes every rule this prefix owns (also what a crashed run left behind) */
  remove(): Promise<void>;
}

async function enableForwarding(): Promise<void> {
  try {
    await writeFile('/proc/sys/net/ipv4/ip_forward', '1\n');
  } catch (err) {
    throw new CellhostError('ERR_NETNS_SETUP', `cannot enable IPv4 forwarding: ${describeError(err)}`, { cause: err });
  }
}

function createNftFirewall(opts: FirewallOptions): Firewall {
  const table = nftTableName(opts.prefix);
  return {
    backend: 'nftables',
    async install() {
      await enableForwarding();
      await runChecked('ERR_NETNS_SETUP', 'nft', ['-f', '-'], { input: buildNftRuleset(opts), timeoutMs: 10_000 });
    },
    async remove() {
      await runChecked('ERR_NETNS_SETUP', 'nft', ['-f', '-'], {
        input: `table inet ${table}\ndelete table inet ${table}\n`,
        timeoutMs: 10_000,
      });
    },
  };
}

function createIptablesFirewall(opts: FirewallOptions, log: Logger): Firewall {
  const chains = iptablesChains(opts.prefix);
  const ours = Object.values(chains);
  const removeFrom = async (tool: 'iptables' | 'ip6tables', table: string): Promise<void> => {
    const listed = await runCommand(tool, ['-w', '-t', table, '-S'], { timeoutMs: 10_000 });
    if (listed.spawnError || listed.code !== 0) return;
    for (const line of listed.stdout.split('\n')) {
      const args = line.trim().split(/\s+/);
      // a jump from a built-in chain into one of ours, or our own ipv6 drop on the veths
      const jumpsToOurs = args[0] === '-A' && ours.includes(args[args.length - 1]!) && !ours.includes(args[1]!);
      const ourV6Drop = tool === 'ip6tables' && args[0] === '-A' && args.includes(`${opts.prefix}-v+`);
      if (!jumpsToOurs && !ourV6Drop) continue;
      args[0] = '-D';
      const r = await runCommand(tool, ['-w', '-t', table, ...args], { timeoutMs: 10_000 });
      if (r.code !== 0) log.warn('netns.iptables_delete_failed', { rule: line, stderr: r.stderr.trim() });
    }
    for (const chain of ours) {
      await runCommand(tool, ['-w', '-t', table, '-F', chain], { timeoutMs: 10_000 });
      await runCommand(tool, ['-w', '-t', table, '-X', chain], { timeoutMs: 10_000 });
    }
  };
  return {
    backend: 'iptables',
    async install() {
      await enableForwarding();
      await runChecked('ERR_NETNS_SETUP', 'iptables-restore', ['-w', '--noflush'], {
        input: buildIptablesRestore(opts),
        timeoutMs: 10_000,
      });
      const veths = `${opts.prefix}-v+`;
      // no IPv6 on the veths: a best-effort second wall for hosts that have ip6tables
      for (const chain of ['INPUT', 'FORWARD']) {
        const r = await runCommand('ip6tables', ['-w', '-I', chain, '1', '-i', veths, '-j', 'DROP'], { timeoutMs: 10_000 });
        if (r.code !== 0) log.warn('netns.ip6tables_unavailable', { stderr: r.stderr.trim() || r.spawnError?.message });
      }
    },
    async remove() {
      await removeFrom('iptables', 'filter');
      await removeFrom('iptables', 'nat');
      await removeFrom('ip6tables', 'filter');
    },
  };
}

export function createFirewall(backend: NatBackend, opts: FirewallOptions, log: Logger): Firewall {
  return backend === 'nftables' ? createNftFirewall(opts) : createIptablesFirewall(opts, log);
}

/** Which backend this host can use: nftables, unless the host's iptables FORWARD policy drops. */
export async function detectNatBackend(): Promise<{ backend: NatBackend | null; notes: string[] }> {
  const notes: string[] = [];
  const [nft, ipt] = await Promise.all([
    runCommand('nft', ['list', 'tables'], { timeoutMs: 5000 }),
    runCommand('iptables', ['-w', '-S', 'FORWARD'], { timeoutMs: 5000 }),
  ]);
  const hasNft = !nft.spawnError && nft.code === 0;
  const hasIpt = !ipt.spawnError && ipt.code === 0;
  const forwardDrops = hasIpt && /^-P FORWARD (DROP|REJECT)/m.test(ipt.stdout);
  if (forwardDrops && hasIpt) {
    notes.push('iptables FORWARD policy is DROP (Docker?): using iptables so instance traffic can be accepted in that chain');
    return { backend: 'iptables', notes };
  }
  if (hasNft) return { backend: 'nftables', notes };
  if (hasIpt) return { backend: 'iptables', notes };
  return { backend: null, notes };
}
