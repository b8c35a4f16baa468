// What a start has set up so far, undone in reverse when a later step of it fails (a port taken,
// a directory unwritable): a start that did not happen leaves no cgroup, mount, instance or open
// store behind, and the error that stopped it is the one its caller sees.
import { describeError } from './errors.ts';
import type { Logger } from './log.ts';

export interface UndoList {
  /** what undoes the step just done; named for the log when it fails itself */
  add(step: string, undo: () => unknown): void;
  /** every step's undo, the last added first; one that fails is logged and the rest still run */
  run(): Promise<void>;
}

export function createUndoList(log: Logger): UndoList {
  const steps: { step: string; undo: () => unknown }[] = [];
  return {
    add(step, undo) {
      steps.push({ step, undo });
    },
    async run() {
      for (let s = steps.pop(); s; s = steps.pop()) {
        try {
          await s.undo();
        } catch (err) {
          log.warn('serve.undo_failed', { step: s.step, error: describeError(err) });
        }
      }
    },
  };
}
