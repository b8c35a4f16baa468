// Finding cellhost's edge host among a machine's processes: `node [node flags] …/edge-host.mjs ARGS`.
import fs from 'node:fs';

/** the edge host's own arguments (after its file) when process `pid` is one, else null */
export function edgeHostArgs(pid: string | number): string[] | null {
  const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const host = argv.findIndex((a) => a.endsWith('/edge-host.mjs'));
  return argv[0] === 'node' && host > 0 ? argv.slice(host + 1) : null;
}
