import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pollInterval, waitForPort } from '../../../runtime/instances/readiness.ts';
import { freePort } from '../../../runtime/instances/launcher.ts';

describe('pollInterval', () => {
  it('without an expected start: 1 ms for 100 ms, then 5 ms, then 20 ms after 2 s', () => {
    expect([0, 99, 100, 1999, 2000].map((t) => pollInterval(t))).toEqual([1, 1, 5, 5, 20]);
  });

  it('with one: 5 ms apart until 60 % of it, then 1 ms for 100 ms', () => {
    expect([0, 47, 48, 147, 148].map((t) => pollInterval(t, 80))).toEqual([5, 5, 1, 1, 5]);
    // a slow app: past 2 s the sparse polls are 20 ms apart, and the 1 ms stretch still comes
    expect([1000, 2500, 5999, 6000, 6099, 6100].map((t) => pollInterval(t, 10_000))).toEqual([5, 20, 20, 1, 1, 20]);
  });
});

describe('waitForPort with an expected start', () => {
  let server: net.Server | null = null;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('still sees an app that listens far sooner than expected within a few ms', async () => {
    const port = await freePort();
    const listenAfterMs = 40;
    let listeningAt = 0;
    setTimeout(() => {
      server = net.createServer((s) => s.destroy()).listen(port, '127.0.0.1', () => (listeningAt = performance.now()));
    }, listenAfterMs);
    await waitForPort({ host: '127.0.0.1', port, signal: new AbortController().signal, expectMs: 5000 });
    expect(listeningAt).toBeGreaterThan(0);
    // 5 ms polls, plus a loaded machine's timer slack
    expect(performance.now() - listeningAt).toBeLessThan(30);
  });
});
