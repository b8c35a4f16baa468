// Tasks accepted in the same turn of the event loop are written in one fsynced transaction: a
// burst of enqueues costs one disk flush, not one each, and the router is not held by a flush
// per request.
import type { NewTask, TaskStore } from '../store/tasks.ts';

export function createGroupCommit(store: TaskStore): (task: NewTask) => Promise<void> {
  let batch: { task: NewTask; resolve(): void; reject(err: unknown): void }[] = [];

  function flush(): void {
    const current = batch;
    batch = [];
    try {
      store.insertDurably(current.map((b) => b.task));
    } catch (err) {
      for (const b of current) b.reject(err);
      return;
    }
    for (const b of current) b.resolve();
  }

  return function enqueue(task) {
    return new Promise<void>((resolve, reject) => {
      if (!batch.length) setImmediate(flush);
      batch.push({ task, resolve, reject });
    });
  };
}
