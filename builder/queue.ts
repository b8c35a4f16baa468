// One build queue for the host: at most `concurrency` builds at once and one at a time per
// service, in arrival order.

export interface BuildJob {
  id: string;
  service: string;
  run(): Promise<void>;
}

export interface BuildQueue {
  enqueue(job: BuildJob): void;
  /** drop a job that has not started; false when it is running or unknown */
  cancel(id: string): boolean;
  queued(service?: string): string[];
  /** resolves when nothing is running or queued */
  idle(): Promise<void>;
}

export function createBuildQueue(opts: { concurrency: number; onError?(job: BuildJob, err: unknown): void }): BuildQueue {
  const waiting: BuildJob[] = [];
  const runningServices = new Set<string>();
  let running = 0;
  let idleWaiters: (() => void)[] = [];

  function pump(): void {
    for (let i = 0; i < waiting.length && running < opts.concurrency; ) {
      const job = waiting[i]!;
      if (runningServices.has(job.service)) {
        i++;
        continue;
      }
      waiting.splice(i, 1);
      running++;
      runningServices.add(job.service);
      void job
        .run()
        .catch((err) => opts.onError?.(job, err))
        .finally(() => {
          running--;
          runningServices.delete(job.service);
          pump();
        });
    }
    if (running === 0 && waiting.length === 0) {
      for (const w of idleWaiters) w();
      idleWaiters = [];
    }
  }

  return {
    enqueue(job) {
      waiting.push(job);
      pump();
    },
    cancel(id) {
      const i = waiting.findIndex((j) => j.id === id);
      if (i < 0) return false;
      waiting.splice(i, 1);
      pump();
      return true;
    },
    queued: (service) => waiting.filter((j) => !service || j.service === service).map((j) => j.id),
    idle: () => (running === 0 && waiting.length === 0 ? Promise.resolve() : new Promise((r) => idleWaiters.push(r))),
  };
}
