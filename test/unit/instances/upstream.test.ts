// An instance's upstream pool with its first connection opened ahead (an edge standby told to
// go): the connection exists before any request, the first request goes out on it, one the app
// refused is replaced by a connection of the pool's own, and one never used is closed with the
// pool. And the pool's connections taken in turn, so none idles out under steady load. Both
// clients: the router's own on Node's parser, and undici's where that parser cannot be used.
// Real sockets on loopback.
import http from 'node:http';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../runtime/instances/launcher.ts';
import { loadLlhttpBinding } from '../../../runtime/core/llhttp-binding.ts';
import { closeUpstream, openUpstream as open, type Upstream, type UpstreamOptions } from '../../../runtime/instances/upstream.ts';
import { waitFor } from '../../helpers/server.ts';

const servers: http.Server[] = [];
const pools: Upstream[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) closeUpstream(p);
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r).closeAllConnections());
});

/** an app that counts its connections, and those closed */
async function app(port: number, keepAliveTimeoutMs = 5000): Promise<{ opened: () => number; closed: () => number }> {
  let opened = 0;
  let closed = 0;
  const server = http.createServer((req, res) => res.end(`hello ${req.url}`));
  server.keepAliveTimeout = keepAliveTimeoutMs;
  server.on('connection', (s: net.Socket) => {
    opened++;
    s.once('close', () => closed++);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return { opened: () => opened, closed: () => closed };
}

/** GET through the pool's dispatch API, as the router sends requests */
function get(pool: Upstream, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    pool.dispatch({ path, method: 'GET', headers: ['host', 'app.test'], body: null }, {
      onConnect() {},
      onHeaders: () => true,
      onData: (chunk: Buffer) => (chunks.push(chunk), true),
      onComplete: () => resolve(Buffer.concat(chunks).toString()),
      onError: reject,
    });
  });
}

const binding = loadLlhttpBinding();
if (!binding.ok) throw new Error(binding.reason);

describe.each([
  ['on Node\'s parser', binding.binding],
  ['undici', null],
])('%s', (_name, parser) => {
  const openUpstream = (address: { host: string; port: number }, concurrency: number, opts: UpstreamOptions = {}) => open(address, concurrency, { ...opts, parser });

  describe('openUpstream with connectNow', () => {
    it('connects before any request, and the first request goes out on that connection', async () => {
      const port = await freePort();
      const counts = await app(port);
      const pool = openUpstream({ host: '127.0.0.1', port }, 4, { connectNow: true });
      pools.push(pool);
      await waitFor(() => counts.opened() === 1, { what: 'the connection opened ahead' });
      expect(await get(pool, '/a')).toBe('hello /a');
      expect(counts.opened()).toBe(1);
    });

    it('without it, nothing connects until a request', async () => {
      const port = await freePort();
      const counts = await app(port);
      const pool = openUpstream({ host: '127.0.0.1', port }, 4);
      pools.push(pool);
      await new Promise((r) => setTimeout(r, 100));
      expect(counts.opened()).toBe(0);
      expect(await get(pool, '/')).toBe('hello /');
      expect(counts.opened()).toBe(1);
    });

    it('refused ahead (the app did not listen yet): the request makes a connection of its own', async () => {
      const port = await freePort();
      const pool = openUpstream({ host: '127.0.0.1', port }, 1, { connectNow: true });
      pools.push(pool);
      await new Promise((r) => setTimeout(r, 50));
      const counts = await app(port);
      expect(await get(pool, '/late')).toBe('hello /late');
      expect(counts.opened()).toBe(1);
    });

    it('a connection opened ahead and never used is closed with the pool', async () => {
      const port = await freePort();
      const counts = await app(port);
      const pool = openUpstream({ host: '127.0.0.1', port }, 1, { connectNow: true });
      await waitFor(() => counts.opened() === 1, { what: 'the connection opened ahead' });
      closeUpstream(pool);
      await waitFor(() => counts.closed() === 1, { what: 'the unused connection closed' });
    });
  });

  describe('the pool under steady load', () => {
    it('takes its open connections in turn: one request at a time for longer than their idle timeout closes none of them', async () => {
      const port = await freePort();
      // the app says `Keep-Alive: timeout=3`; undici closes a connection idle for that less 2 s
      const counts = await app(port, 3000);
      const pool = openUpstream({ host: '127.0.0.1', port }, 4);
      pools.push(pool);
      const burst = () => Promise.all(['/1', '/2', '/3', '/4'].map((p) => get(pool, p)));
      await burst();
      expect(counts.opened()).toBe(4);
      // 1.6 s of one request at a time: taking the first free connection each time, as undici's
      // Pool does, would leave three idle past 1 s, closed, and reconnected by the next burst
      const until = Date.now() + 1600;
      while (Date.now() < until) {
        expect(await get(pool, '/steady')).toBe('hello /steady');
        await new Promise((r) => setTimeout(r, 100));
      }
      await burst();
      expect(counts.closed()).toBe(0);
      expect(counts.opened()).toBe(4);
    });
  });
});
