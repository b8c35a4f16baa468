// The fake outside world of the network tests: a namespace behind its own veth, like a host on
// the LAN, on a /30 of the benchmarking range (198.18.0.0/15), so no packet leaves the machine.
// A TCP server in it answers each connection with the address it came from: a test sees the
// masquerade. Each test file passes its own names, so files running in parallel never share one.
import { spawn, type ChildProcess } from 'node:child_process';
import { runChecked, runCommand } from '../../runtime/sandbox/run-command.ts';

const SPAWN_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

export interface OutsideOptions {
  /** the namespace's name */
  ns: string;
  /** the host's end of the veth */
  ifName: string;
  /** the first three octets of the /30's addresses, e.g. "198.18.222": .1 is the host's end, .2 the outside */
  net24: string;
  port?: number;
  /** what serves in the namespace instead of the address echo: an argv that listens on `port` */
  command?: string[];
}

export interface Outside {
  /** the host's address on the link */
  hostAddr: string;
  /** the outside's address */
  addr: string;
  port: number;
  /** stops the server (by its pid) and removes the veth and the namespace */
  close(): Promise<void>;
}

function removeLink(opts: OutsideOptions) {
  return runCommand('ip', ['-force', '-batch', '-'], { input: `link del ${opts.ifName}\nnetns del ${opts.ns}\n` });
}

export async function setUpOutside(opts: OutsideOptions): Promise<Outside> {
  const hostAddr = `${opts.net24}.1`;
  const addr = `${opts.net24}.2`;
  const port = opts.port ?? 9000;
  // a run killed before its teardown left these behind
  await removeLink(opts);
  let child: ChildProcess | null = null;
  const close = async () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('close', r));
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
    await removeLink(opts);
  };
  try {
    await runChecked('ERR_NETNS_SETUP', 'ip', ['-batch', '-'], {
      input: [`netns add ${opts.ns}`, `link add ${opts.ifName} type veth peer name eth0 netns ${opts.ns}`, `addr add ${hostAddr}/30 dev ${opts.ifName}`, `link set ${opts.ifName} up`, ''].join('\n'),
    });
    await runChecked('ERR_NETNS_SETUP', 'ip', ['-n', opts.ns, '-batch', '-'], {
      input: ['link set lo up', `addr add ${addr}/30 dev eth0`, 'link set eth0 up', ''].join('\n'),
    });
    const command = opts.command ?? [process.execPath, '-e', `require('net').createServer((s) => s.end(s.remoteAddress)).listen(${port}, '0.0.0.0')`];
    child = spawn('nsenter', [`--net=/run/netns/${opts.ns}`, '--', ...command], {
      stdio: 'ignore',
      env: SPAWN_ENV,
    });
    await runChecked('ERR_NETNS_SETUP', 'sh', ['-c', `for i in $(seq 100); do ip netns exec ${opts.ns} ss -ltn | grep -q :${port} && exit 0; sleep 0.05; done; exit 1`]);
  } catch (err) {
    await close();
    throw err;
  }
  return { hostAddr, addr, port, close };
}
