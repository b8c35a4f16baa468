// The one place the router reaches Node's internal parser: it works on the Node this runs on, and
// anything else (gone, switched off, a changed shape or changed arguments) is reported, not used.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { loadLlhttpBinding } from '../../../runtime/core/llhttp-binding.ts';

const real = () => createRequire(process.execPath)('_http_common') as { HTTPParser: any; methods: string[] };

describe('llhttp binding', () => {
  it('loads and parses a request on this Node', () => {
    const b = loadLlhttpBinding();
    expect(b.ok ? 'ok' : b.reason).toBe('ok');
  });

  it('is reported unavailable when switched off or missing', () => {
    expect(loadLlhttpBinding({ disabled: true })).toEqual({ ok: false, reason: expect.stringMatching(/CELLHOST_HTTP_PARSER=node/) });
    const gone = loadLlhttpBinding({
      load: () => {
        throw Object.assign(new Error("Cannot find module '_http_common'"), { code: 'MODULE_NOT_FOUND' });
      },
    });
    expect(gone).toEqual({ ok: false, reason: expect.stringMatching(/did not load: Cannot find module/) });
    expect(loadLlhttpBinding({ load: () => ({}) })).toEqual({ ok: false, reason: '_http_common has no HTTPParser' });
  });

  it('is reported unavailable when its shape or its callbacks’ arguments changed', () => {
    const { HTTPParser, methods } = real();
    expect(loadLlhttpBinding({ load: () => ({ HTTPParser, methods: [] }) })).toMatchObject({ ok: false, reason: '_http_common has no method table' });
    class NoSlots extends HTTPParser {}
    Object.defineProperty(NoSlots, 'kOnHeadersComplete', { value: undefined });
    expect(loadLlhttpBinding({ load: () => ({ HTTPParser: NoSlots, methods }) })).toMatchObject({ ok: false, reason: 'HTTPParser callback slots changed' });
    // a parser that calls back with its head's arguments in another order
    class Reordered extends HTTPParser {}
    let callback: (...args: unknown[]) => unknown = () => 0;
    Object.defineProperty(Reordered.prototype, HTTPParser.kOnHeadersComplete, {
      set: (fn: (...args: unknown[]) => unknown) => void (callback = fn),
      get: () => (...args: unknown[]) => callback(...args.reverse()),
    });
    expect(loadLlhttpBinding({ load: () => ({ HTTPParser: Reordered, methods }) })).toEqual({ ok: false, reason: 'HTTPParser does not parse as expected: head arguments changed' });
  });
});
