// One instance's process: spawn, read its output, detect readiness or an early exit, and a
// dispose() that always leaves nothing running.
import { spawn, type ChildProcess, type IOType, type StdioPipe } from 'node:child_process';
import { CellhostError } from '../core/errors.ts';
import { fdPipes, feedFds } from '../sandbox/run-command.ts';
import type { Launch } from './launcher.ts';
import { describeListenProblem, listeningSockets } from './listeners.ts';
import { LineSplitter, TailBuffer } from './output.ts';
import { waitForPort } from './readiness.ts';

export type OutputStream = 'stdout' | 'stderr';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface InstanceProcess {
  readonly pid: number;
  /** resolves when the port accepts; rejects with ERR_APP_EXITED / ERR_START_TIMEOUT */
  readonly ready: Promise<void>;
  /** a held process (a standby) starts the app now; the start timeout runs from here */
  go(): void;
  /** resolves once the process has exited (never rejects) */
  readonly exited: Promise<ExitInfo>;
  isExited(): boolean;
  tail(): string[];
  /** after exit: why, as a coded error (OOM when the launcher can tell, else the exit status) */
  explainExit(phase: 'start' | 'serving'): Promise<CellhostError>;
  /** the start is over: end the startup boost (once; later calls do nothing) */
  settle(): Promise<void>;
  /** while it may still be running: what the launcher already knows went wrong (an OOM kill) */
  checkNow(): Promise<CellhostError | null>;
  /** the launcher can freeze it (cgroup freezer) */
  readonly canFreeze: boolean;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** what its processes hold in memory now (the cgroup's usage); null when the launcher cannot tell */
  memoryBytes(): Promise<number | null>;
  /** SIGTERM the group, SIGKILL after graceMs, then free the launch; idempotent */
  dispose(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  startTimeoutMs: number;
  healthPath?: string | null;
  onOutput?(stream: OutputStream, line: string): void;
  /** the launch waits on stdin before it execs the app (InstanceSpec.held): readiness starts at go() */
  held?: boolean;
  /** how long this app usually takes to listen (readiness polls sparsely before) */
  expectReadyMs?: number;
  /** a line the app wrote on its control fd (Launch.controlFd): the edge host's busy and idle */
  onControl?(line: string): void;
  /** the service's port setting, to name it when the app listens elsewhere */
  servicePort?: number;
}

/**
 * A start that has waited this long, its port still closed, looks at where the app listens
 * instead; what is wrong must be seen twice, LISTEN_CHECK_EVERY_MS apart, before the start fails
 * (an app may open another port first, a debugger's or a metrics one, then its own).
 */
export const LISTEN_CHECK_AFTER_MS = 1000;
const LISTEN_CHECK_EVERY_MS = 500;

export function spawnInstance(launch: Launch, opts: SpawnOptions): InstanceProcess {
  const tail = new TailBuffer(20);
  const stdio: (IOType | StdioPipe)[] = [opts.held ? 'pipe' : 'ignore', 'pipe', 'pipe', ...fdPipes(launch.fds)];
  if (launch.controlFd !== undefined) {
    if (launch.controlFd !== stdio.length) throw new Error(`control fd ${launch.controlFd} is not the next fd (${stdio.length})`);
    stdio.push('pipe');
  }
  const child: ChildProcess = spawn(launch.argv[0]!, launch.argv.slice(1), {
    cwd: launch.cwd,
    env: launch.env,
    stdio,
    // its own process group, so the whole tree can be signalled at once
    detached: true,
  });
  feedFds(child, launch.fds);
  // the edge host says when it is ready, on its control fd: no polling for it (a poll costs the
  // platform ~0.2 ms of CPU and lands up to a poll interval late; and its port is open from its
  // boot on, before its module has loaded, so a poll would say nothing)
  let saidReady: () => void = () => {};
  const told = new Promise<void>((resolve) => (saidReady = resolve));
  if (launch.controlFd !== undefined) {
    const control = child.stdio[launch.controlFd] as import('node:stream').Readable | null;
    const splitter = new LineSplitter((line) => {
      const word = line.trim();
      if (word === 'ready') saidReady();
      else opts.onControl?.(word);
    }, 256);
    control?.on('data', (b: Buffer) => splitter.push(b));
    control?.on('error', () => {});
  }
  const pid = child.pid ?? -1;
  for (const stream of ['stdout', 'stderr'] as const) {
    const splitter = new LineSplitter((line) => {
      tail.add(line);
      opts.onOutput?.(stream, line);
    });
    child[stream]!.on('data', (b: Buffer) => splitter.push(b));
    child[stream]!.on('end', () => splitter.flush());
  }

  let exitInfo: ExitInfo | null = null;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
    child.once('error', () => {
      exitInfo ??= { code: 127, signal: null };
      resolve(exitInfo);
    });
  });

  let release: () => void = () => {};
  const released = opts.held ? new Promise<void>((resolve) => (release = resolve)) : null;
  // a standby that is never used: its stdin must not keep a write error from surfacing as a crash
  child.stdin?.on('error', () => {});

  const readiness = new AbortController();
  const ready = (async () => {
    if (released) await Promise.race([released, exited]);
    const timer = setTimeout(() => readiness.abort(new CellhostError('ERR_START_TIMEOUT', `the app did not listen on its port within ${opts.startTimeoutMs / 1000} s`)), opts.startTimeoutMs);
    void exited.then(async () => {
      if (readiness.signal.aborted) return;
      const reason = await explainExit('start');
      if (!readiness.signal.aborted) readiness.abort(reason);
    });
    void watchListeners(readiness);
    try {
      if (launch.controlFd !== undefined && !opts.healthPath) await untilAborted(told, readiness.signal);
      else {
        await waitForPort({
          host: launch.upstream.host,
          port: launch.upstream.port,
          signal: readiness.signal,
          healthPath: opts.healthPath,
          expectMs: opts.expectReadyMs,
        });
      }
      readiness.abort(null);
    } catch (err) {
      throw readiness.signal.reason instanceof CellhostError ? readiness.signal.reason : err;
    } finally {
      clearTimeout(timer);
    }
  })();
  ready.catch(() => {});

  /**
   * While the port stays closed past LISTEN_CHECK_AFTER_MS: an app listening somewhere else (on
   * 3000 when the service's port is 8080, or on 127.0.0.1 only) fails its start within about two
   * seconds, saying where it listens, instead of at the start timeout.
   */
  async function watchListeners(readiness: AbortController): Promise<void> {
    const { signal } = readiness;
    let seen: string | null = null;
    await sleepUnless(LISTEN_CHECK_AFTER_MS, signal);
    while (!signal.aborted && !exitInfo) {
      const problem = describeListenProblem(await listeningSockets(pid).catch(() => []), launch.upstream, opts.servicePort ?? launch.upstream.port);
      if (signal.aborted) return;
      if (problem && problem === seen) {
        readiness.abort(new CellhostError('ERR_APP_WRONG_PORT', problem, { details: { lastLines: tail.get() } }));
        return;
      }
      seen = problem;
      await sleepUnless(LISTEN_CHECK_EVERY_MS, signal);
    }
  }

  async function explainExit(phase: 'start' | 'serving'): Promise<CellhostError> {
    const info = await exited;
    const diagnosis = await launch.diagnose?.().catch(() => null);
    const details = { exit: info, lastLines: tail.get() };
    if (diagnosis) return new CellhostError(diagnosis.code, diagnosis.message, { details });
    return phase === 'start'
      ? new CellhostError('ERR_APP_EXITED', `the app exited during start (${describeExit(info)})`, { details })
      : new CellhostError('ERR_APP_CRASHED', `the app exited while serving (${describeExit(info)})`, { details });
  }

  let disposing: Promise<void> | null = null;
  let settled: Promise<void> | null = null;
  const dispose = (graceMs = 5000) =>
    (disposing ??= (async () => {
      if (!exitInfo) {
        const asked = await launch.terminate?.(pid).catch(() => false);
        if (!asked) signalGroup(pid, 'SIGTERM');
        const killer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
        await exited;
        clearTimeout(killer);
      }
      // children that left the group (setsid, daemonised) die with the cgroup, when there is one
      signalGroup(pid, 'SIGKILL');
      await launch.killAll?.();
      await launch.release();
    })());

  return {
    pid,
    ready,
    exited,
    isExited: () => exitInfo !== null,
    tail: () => tail.get(),
    explainExit,
    go() {
      child.stdin?.end('\n');
      release();
    },
    settle: () => (settled ??= (launch.onReady?.() ?? Promise.resolve()).catch(() => {})),
    async checkNow() {
      const d = await launch.diagnose?.().catch(() => null);
      return d ? new CellhostError(d.code, d.message, { details: { lastLines: tail.get() } }) : null;
    },
    canFreeze: Boolean(launch.freeze && launch.thaw),
    freeze: async () => launch.freeze?.(),
    thaw: async () => launch.thaw?.(),
    memoryBytes: async () => (await launch.memoryBytes?.().catch(() => null)) ?? null,
    dispose,
  };
}

/** `p`, or the signal's reason when it aborts first */
function untilAborted(p: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    void p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/** waits `ms`, or less when the signal aborts first */
function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // ESRCH: the group is already gone, which is the goal
  }
}

export function describeExit(info: ExitInfo): string {
  if (info.signal) return `killed by ${info.signal}`;
  return `exit code ${info.code}`;
}
