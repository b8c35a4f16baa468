import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../runtime/core/log.ts';
import { createUndoList } from '../../../runtime/core/undo-list.ts';

describe('createUndoList', () => {
  it('undoes the last step first, awaiting each, and only once', async () => {
    const done: string[] = [];
    const undo = createUndoList(createLogger({ write: () => {} }));
    undo.add('store', () => done.push('store'));
    undo.add('isolation', async () => {
      await new Promise((r) => setTimeout(r, 20));
      done.push('isolation');
    });
    undo.add('listener', () => done.push('listener'));
    await undo.run();
    await undo.run();
    expect(done).toEqual(['listener', 'isolation', 'store']);
  });

  it('logs a step that fails and still runs the ones before it', async () => {
    const lines: string[] = [];
    const done: string[] = [];
    const undo = createUndoList(createLogger({ write: (l) => lines.push(l) }));
    undo.add('store', () => done.push('store'));
    undo.add('pool', async () => {
      throw new Error('instance would not stop');
    });
    await undo.run();
    expect(done).toEqual(['store']);
    expect(lines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ level: 'warn', event: 'serve.undo_failed', step: 'pool', error: expect.stringContaining('instance would not stop') })]);
  });
});
