import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pollInterval, SAFETY_NET_POLL_MS, waitForPort } from '../../../runtime/instances/readiness.ts';
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

describe('waitForPort for an app that says when it listens', () => {
  let server: net.Server | null = null;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  async function countingServer(): Promise<{ port: number; connections: () => number }> {
    const port = await freePort();
    let n = 0;
    server = net.createServer((s) => (n++, s.destroy()));
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', () => r()));
    return { port, connections: () => n };
  }

  it('is not polled while it starts: told at 50 ms, no connect was made', async () => {
    const { port, connections } = await countingServer();
    const told = new AbortController();
    setTimeout(() => told.abort(new Error('told')), 50);
    await expect(waitForPort({ host: '127.0.0.1', port, signal: told.signal, toldWhenListening: true })).rejects.toThrow('told');
    expect(connections()).toBe(0);
  });

  it('is found by the safety net when it never says so', async () => {
    const { port, connections } = await countingServer();
    const t0 = performance.now();
    await waitForPort({ host: '127.0.0.1', port, signal: new AbortController().signal, toldWhenListening: true });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(SAFETY_NET_POLL_MS - 5);
    expect(connections()).toBe(1);
  });
});
