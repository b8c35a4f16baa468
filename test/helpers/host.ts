// Host-side views shared by the isolation tests and the benchmarks: a process tree from /proc,
// and what a network namespace pool with a given prefix could leave behind.
import fs from 'node:fs';
import { runCommand } from '../../runtime/sandbox/run-command.ts';

/** the pid and every descendant of it (through each thread's children list) */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 1000; i++) {
    const p = out[i]!;
    let tids: string[] = [];
    try {
      tids = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tids) {
      try {
        out.push(...fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return out;
}

/** namespaces, veths, nft table and iptables/ip6tables rules named with this netns prefix */
export async function networkLeftovers(prefix: string): Promise<string[]> {
  const found: string[] = [];
  const ns = await runCommand('ip', ['netns', 'list']);
  for (const l of ns.stdout.split('\n')) if (l.startsWith(`${prefix}-ns`)) found.push(`netns ${l}`);
  const links = await runCommand('ip', ['-o', 'link', 'show']);
  for (const l of links.stdout.split('\n')) if (l.includes(` ${prefix}-v`)) found.push(`link ${l.split(':')[1]?.trim()}`);
  const nft = await runCommand('nft', ['list', 'tables']);
  if (nft.stdout.includes(`cellhost_${prefix}`)) found.push(`nft table cellhost_${prefix}`);
  for (const table of ['filter', 'nat']) {
    const ipt = await runCommand('iptables', ['-w', '-t', table, '-S']);
    for (const l of ipt.stdout.split('\n')) if (l.includes(`CH-${prefix}-`) || l.includes(`${prefix}-v+`)) found.push(`iptables ${l}`);
  }
  const ip6 = await runCommand('ip6tables', ['-w', '-S']);
  for (const l of ip6.stdout.split('\n')) if (l.includes(`${prefix}-v+`)) found.push(`ip6tables ${l}`);
  return found;
}
