// Placement's rules on plain records and a fake clock: no process, no timer, no /proc.
import { describe, expect, it } from 'vitest';
import type { CpuMark } from '../../../../runtime/instances/host-cpu.ts';
import {
  defaultMaxParallelStarts,
  place,
  type PlacedInstance,
  type PlacementInput,
  type PlacementRules,
  type PressureWindow,
} from '../../../../runtime/instances/pool/placement.ts';

interface FakeInstance extends PlacedInstance {
  id: string;
  frozen?: boolean;
}

const T0 = 1_000_000;
const TARGET = { generation: 'g2', concurrency: 2, maxInstances: 4 };
const MARK: CpuMark = { atMs: 0, stallUs: 0 };

function fakeClock(start = T0) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

/** an instance of the target's version, ready a second before T0 and idle, unless told otherwise */
function inst(id: string, fields: Partial<FakeInstance> = {}): FakeInstance {
  return { id, generation: 'g2', state: 'ready', inflight: 0, exited: false, readyAt: T0 - 1000, ...fields };
}
const full = (id: string, fields: Partial<FakeInstance> = {}) => inst(id, { inflight: TARGET.concurrency, ...fields });

function service(instances: FakeInstance[], fields: Partial<Omit<PlacementInput<FakeInstance>, 'pressure'>> & { pressure?: Partial<PressureWindow> } = {}): PlacementInput<FakeInstance> {
  return {
    instances,
    backoffUntil: 0,
    completed: 0,
    ...fields,
    pressure: { since: 0, episodeSince: 0, completedAtOpen: 0, cpu: null, heldReported: false, ...fields.pressure },
  };
}

/** a host CPU reading fixed by the test, counting how often it is read */
function host(saturated: boolean) {
  const reading = {
    reads: 0,
    saturated(_since: CpuMark) {
      reading.reads++;
      return saturated;
    },
  };
  return reading;
}

function rules(fields: Partial<PlacementRules> = {}): PlacementRules {
  return { scaleOutAfterMs: 50, maxParallelStarts: 1, maxHoldMs: 1000, ...fields };
}

const servedBy = (s: PlacementInput<FakeInstance>, now = T0, r = rules()) => {
  const p = place(s, TARGET, now, r);
  return p.kind === 'serve' ? p.instance.id : p.kind;
};

describe('placement: which instance serves', () => {
  it('a ready instance with a free slot, the first one in order', () => {
    expect(servedBy(service([inst('a', { inflight: 1 }), inst('b')]))).toBe('a');
  });

  it('passes over full instances and ones whose process exited', () => {
    expect(servedBy(service([full('a'), inst('b', { exited: true }), inst('c', { inflight: 1 })]))).toBe('c');
  });

  it('a frozen instance serves (it is thawed first) rather than a new one starting', () => {
    expect(servedBy(service([inst('a', { frozen: true })]))).toBe('a');
  });

  it('a starting instance with a free slot takes the request: one start serves the requests that come during it', () => {
    expect(servedBy(service([inst('a', { state: 'starting', readyAt: null, inflight: 1 })]))).toBe('a');
  });

  it('a ready instance goes before a starting one listed first', () => {
    expect(servedBy(service([inst('a', { state: 'starting', readyAt: null }), inst('b')]))).toBe('b');
  });

  it('never a draining instance, of this version or another', () => {
    const s = service([inst('a', { state: 'draining' }), inst('b', { generation: 'g1', state: 'draining' })]);
    expect(servedBy(s)).toBe('start');
  });

  it('never an instance of an older version that is still ready or starting', () => {
    const s = service([inst('a', { generation: 'g1' }), inst('b', { generation: 'g1', state: 'starting' })]);
    expect(servedBy(s)).toBe('start');
  });
});

describe('placement: during a rollout', () => {
  const retiring = (id: string, fields: Partial<FakeInstance> = {}) => inst(id, { generation: 'g1', state: 'retiring', ...fields });
  const starting = (id: string, inflight: number) => inst(id, { state: 'starting', readyAt: null, inflight });

  it('a retiring instance serves while the new version has no instance with a free slot', () => {
    expect(servedBy(service([retiring('old')]))).toBe('old');
    expect(servedBy(service([retiring('old'), full('new', { state: 'starting', readyAt: null })]))).toBe('old');
  });

  it('the new version\'s starting instance takes its first request, then the old ones serve while it starts', () => {
    expect(servedBy(service([retiring('old'), starting('new', 0)]))).toBe('new');
    expect(servedBy(service([retiring('old'), starting('new', 1)]))).toBe('old');
  });

  it('a full retiring instance is passed over', () => {
    expect(servedBy(service([retiring('old', { inflight: 2 }), starting('new', 1)]))).toBe('new');
  });

  it('once the new version is ready, it serves', () => {
    expect(servedBy(service([retiring('old'), inst('new')]))).toBe('new');
  });
});

describe('placement: starting instances', () => {
  it('starts one when the service has none', () => {
    expect(servedBy(service([]))).toBe('start');
  });

  it('starts one at once when no instance is warm, whatever the scale-out window says', () => {
    const s = service([inst('a', { state: 'draining', inflight: 2 })], { pressure: { since: T0 - 10, episodeSince: T0 - 10 } });
    expect(servedBy(s)).toBe('start');
  });

  it('waits at the service\'s max instances', () => {
    const s = service([full('a'), full('b'), full('c', { state: 'starting', readyAt: null }), full('d', { state: 'draining' })]);
    expect(place(s, TARGET, T0, rules({ maxParallelStarts: 4 }))).toEqual({ kind: 'wait', opensWindow: false });
  });

  it('counts neither exited instances nor other versions against the max', () => {
    const s = service([full('a', { state: 'starting', readyAt: null }), full('b', { exited: true }), full('c', { generation: 'g1' }), full('d', { generation: 'g1', state: 'retiring' })]);
    expect(servedBy(s, T0, rules({ maxParallelStarts: 2 }))).toBe('start');
  });

  it('starts at most maxParallelStarts at once; the requests wait for those', () => {
    const s = service([full('a', { state: 'starting', readyAt: null })]);
    expect(place(s, TARGET, T0, rules({ maxParallelStarts: 1 }))).toEqual({ kind: 'wait', opensWindow: false });
    expect(servedBy(s, T0, rules({ maxParallelStarts: 2 }))).toBe('start');
  });

  it('by default, half the host\'s cores start at once, at least one', () => {
    expect([1, 2, 3, 4, 8].map(defaultMaxParallelStarts)).toEqual([1, 1, 1, 2, 4]);
  });
});

describe('placement: crash-loop backoff', () => {
  it('no start before the backoff ends: the request fails at once', () => {
    const clock = fakeClock();
    const s = service([], { backoffUntil: T0 + 250 });
    expect(servedBy(s, clock.now())).toBe('backoff');
    clock.advance(249);
    expect(servedBy(s, clock.now())).toBe('backoff');
    clock.advance(1);
    expect(servedBy(s, clock.now())).toBe('start');
  });

  it('an instance with a free slot still serves during a backoff', () => {
    expect(servedBy(service([inst('a')], { backoffUntil: T0 + 250 }))).toBe('a');
  });

  it('at the max instances the request waits, backoff or not', () => {
    const s = service([full('a'), full('b'), full('c'), full('d')], { backoffUntil: T0 + 250 });
    expect(servedBy(s)).toBe('wait');
  });

  it('backoff is told before the limit on parallel starts', () => {
    const s = service([full('a', { state: 'starting', readyAt: null })], { backoffUntil: T0 + 250 });
    expect(servedBy(s, T0, rules({ maxParallelStarts: 1 }))).toBe('backoff');
  });
});

describe('placement: scale-out past full warm instances', () => {
  it('requests wait 50 ms for a full warm instance, then another starts', () => {
    const clock = fakeClock();
    const busy = [full('a')];
    // the first request to find it full opens the window (the pool records it)
    expect(place(service(busy), TARGET, clock.now(), rules())).toEqual({ kind: 'wait', opensWindow: true });
    const s = service(busy, { pressure: { since: clock.now(), episodeSince: clock.now() } });
    clock.advance(49);
    expect(place(s, TARGET, clock.now(), rules())).toEqual({ kind: 'wait', opensWindow: false });
    clock.advance(1);
    expect(servedBy(s, clock.now())).toBe('start');
  });

  it('with no window configured, another starts at once', () => {
    expect(servedBy(service([full('a')]), T0, rules({ scaleOutAfterMs: 0 }))).toBe('start');
  });

  it('a frozen full instance counts as warm', () => {
    expect(place(service([full('a', { frozen: true })]), TARGET, T0, rules())).toEqual({ kind: 'wait', opensWindow: true });
  });

  it('an exited instance is not warm: one starts at once', () => {
    expect(servedBy(service([full('a', { exited: true })]))).toBe('start');
  });
});

describe('placement: a host with no core free holds the scale-out back', () => {
  /** the window opened at T0 (this episode too), `completed` requests answered since */
  const pressed = (instances: FakeInstance[], completed: number, fields: Partial<PressureWindow> = {}) =>
    service(instances, { completed: 100 + completed, pressure: { since: T0, episodeSince: T0, completedAtOpen: 100, cpu: MARK, ...fields } });
  const due = T0 + 50;

  it('holds while the warm instances turn requests over quickly, and says so once per episode', () => {
    const cpu = host(true);
    expect(place(pressed([full('a')], 1), TARGET, due, rules({ hostCpu: cpu }))).toEqual({ kind: 'hold', isFirst: true });
    expect(place(pressed([full('a')], 1, { heldReported: true }), TARGET, due, rules({ hostCpu: cpu }))).toEqual({ kind: 'hold', isFirst: false });
    expect(cpu.reads).toBe(2);
  });

  it('scales out when a core is free', () => {
    const cpu = host(false);
    expect(servedBy(pressed([full('a')], 1), due, rules({ hostCpu: cpu }))).toBe('start');
    expect(cpu.reads).toBe(1);
  });

  it('holds for a second of the episode at most: past that the load is not a burst', () => {
    const cpu = host(true);
    // the window was reopened by holds; the episode began 999 ms and then 1000 ms before
    const reopened = (episodeSince: number) => pressed([full('a')], 1, { since: due - 50, episodeSince, heldReported: true });
    expect(servedBy(reopened(due - 999), due, rules({ hostCpu: cpu }))).toBe('hold');
    expect(servedBy(reopened(due - 1000), due, rules({ hostCpu: cpu }))).toBe('start');
    // the CPU is not read when the time already decides
    expect(cpu.reads).toBe(1);
  });

  it('scales out when the queue is stuck behind slow requests (fewer answered than warm instances)', () => {
    const cpu = host(true);
    expect(servedBy(pressed([full('a'), full('b')], 1), due, rules({ hostCpu: cpu, maxParallelStarts: 2 }))).toBe('start');
    expect(servedBy(pressed([full('a'), full('b')], 2), due, rules({ hostCpu: cpu, maxParallelStarts: 2 }))).toBe('hold');
    expect(cpu.reads).toBe(1);
  });

  it('an instance counts from its second window on: its first requests are its slowest, and its readiness opened the first', () => {
    const cpu = host(true);
    const r = rules({ hostCpu: cpu });
    expect(servedBy(pressed([full('a'), full('b', { readyAt: T0 + 10 })], 1), due, r)).toBe('hold');
    expect(servedBy(pressed([full('a'), full('b', { readyAt: T0 })], 1), due, r)).toBe('hold');
    // the window opened a few milliseconds after its readiness (a busy tick): still its first
    expect(servedBy(pressed([full('a'), full('b', { readyAt: T0 - 3 })], 1), due, r)).toBe('hold');
    expect(servedBy(pressed([full('a'), full('b', { readyAt: T0 - 49 })], 1), due, r)).toBe('hold');
    expect(servedBy(pressed([full('a'), full('b', { readyAt: T0 - 50 })], 1), due, r)).toBe('start');
  });

  it('an instance whose process exited is not counted either', () => {
    const r = rules({ hostCpu: host(true) });
    expect(servedBy(pressed([full('a'), full('b', { exited: true })], 1), due, r)).toBe('hold');
  });

  it('never holds without a reading of the host\'s CPU', () => {
    expect(servedBy(pressed([full('a')], 1), due, rules())).toBe('start');
    const cpu = host(true);
    expect(servedBy(pressed([full('a')], 1, { cpu: null }), due, rules({ hostCpu: cpu }))).toBe('start');
    expect(cpu.reads).toBe(0);
  });

  it('reads the CPU only once the window is over, not for every request that waits in it', () => {
    const cpu = host(true);
    for (let ms = 0; ms < 50; ms += 5) expect(servedBy(pressed([full('a')], 1), T0 + ms, rules({ hostCpu: cpu }))).toBe('wait');
    expect(cpu.reads).toBe(0);
  });

  it('the hold still leaves the service its max instances and its parallel starts', () => {
    const cpu = host(true);
    const atMax = pressed([full('a'), full('b'), full('c'), full('d')], 10);
    expect(servedBy(atMax, due, rules({ hostCpu: cpu, maxParallelStarts: 4 }))).toBe('wait');
    expect(cpu.reads).toBe(0);
  });
});
