// Where app output and platform events go: buffered, written in batches, fanned out live.
// App output is rate-limited per instance so a chatty app cannot take the platform's
// memory or disk; what is dropped is counted and said.
import type { Clock } from '../core/clock.ts';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { LogEntry, LogStore, NewLogEntry } from '../store/logs.ts';

export interface LogSinkOptions {
  store: LogStore;
  clock: Clock;
  log: Logger;
  flushMs?: number;
  /** lines per second per instance before lines are dropped */
  linesPerSecond?: number;
  retention?: { maxAgeMs: number; maxPerService: number };
  /** masks secret values in a line of the service's output */
  mask?(service: string, text: string): string;
}

export interface LogSink {
  line(service: string, instanceId: string, deploymentId: string, stream: 'stdout' | 'stderr', message: string): void;
  event(service: string, event: string, message: string, fields?: Record<string, unknown>): void;
  subscribe(service: string, cb: (entry: LogEntry) => void): () => void;
  flush(): void;
  close(): void;
}

const MAX_BUFFER = 5000;

export function createLogSink(opts: LogSinkOptions): LogSink {
  const limit = opts.linesPerSecond ?? 1000;
  let buffer: NewLogEntry[] = [];
  const subscribers = new Map<string, Set<(e: LogEntry) => void>>();
  const buckets = new Map<string, { second: number; count: number; dropped: number; service: string; deploymentId: string }>();

  function flush(): void {
    reportDrops();
    if (!buffer.length) return;
    const batch = buffer;
    buffer = [];
    let written: LogEntry[];
    try {
      written = opts.store.append(batch);
    } catch (err) {
      opts.log.error('logs.write_failed', { error: describeError(err), lost: batch.length });
      return;
    }
    for (const e of written) {
      const subs = subscribers.get(e.service);
      if (subs) for (const cb of subs) cb(e);
    }
  }

  function reportDrops(): void {
    const second = Math.floor(opts.clock.now() / 1000);
    for (const [instanceId, b] of buckets) {
      if (b.second === second) continue;
      if (b.dropped) {
        buffer.push({
          service: b.service,
          ts: opts.clock.now(),
          stream: 'event',
          instanceId,
          deploymentId: b.deploymentId,
          event: 'logs_dropped',
          message: `${b.dropped} lines of output dropped: over ${limit} lines per second`,
          fields: { dropped: b.dropped },
        });
      }
      buckets.delete(instanceId);
    }
  }

  function push(entry: NewLogEntry): void {
    buffer.push(entry);
    if (buffer.length >= MAX_BUFFER) flush();
  }

  const timer = setInterval(flush, opts.flushMs ?? 100);
  timer.unref();
  const retention = opts.retention ?? { maxAgeMs: 7 * 24 * 3600_000, maxPerService: 200_000 };
  const pruneTimer = setInterval(() => {
    try {
      const n = opts.store.prune(opts.clock.now() - retention.maxAgeMs, retention.maxPerService);
      if (n) opts.log.info('logs.pruned', { rows: n });
    } catch (err) {
      opts.log.error('logs.prune_failed', { error: describeError(err) });
    }
  }, 60_000);
  pruneTimer.unref();

  return {
    line(service, instanceId, deploymentId, stream, message) {
      const now = opts.clock.now();
      const second = Math.floor(now / 1000);
      let b = buckets.get(instanceId);
      if (!b || b.second !== second) {
        if (b?.dropped) reportDrops();
        b = { second, count: 0, dropped: 0, service, deploymentId };
        buckets.set(instanceId, b);
      }
      if (++b.count > limit) {
        b.dropped++;
        return;
      }
      const text = opts.mask ? opts.mask(service, message) : message;
      push({ service, ts: now, stream, instanceId, deploymentId, event: null, message: text, fields: null });
    },
    event(service, event, message, fields) {
      const { instanceId, deploymentId, ...rest } = (fields ?? {}) as { instanceId?: string; deploymentId?: string };
      push({
        service,
        ts: opts.clock.now(),
        stream: 'event',
        instanceId: instanceId ?? null,
        deploymentId: deploymentId ?? null,
        event,
        message,
        fields: Object.keys(rest).length ? rest : null,
      });
    },
    subscribe(service, cb) {
      let set = subscribers.get(service);
      if (!set) subscribers.set(service, (set = new Set()));
      set.add(cb);
      return () => {
        set!.delete(cb);
        if (!set!.size) subscribers.delete(service);
      };
    },
    flush,
    close() {
      clearInterval(timer);
      clearInterval(pruneTimer);
      flush();
    },
  };
}
