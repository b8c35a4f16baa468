// Runtime logs and events: stored, searchable, followed live, resumed by Last-Event-ID.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, startTestServer, TOKEN, waitFor, type TestServer } from '../helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  await server.deploy('hello', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js', idleTimeoutS: 0.3 });
  await server.deployFailing('exits', path.join(FIXTURES, 'node-exit'), { startCommand: 'node app.js' });
});
afterAll(async () => {
  await server?.close();
});

const logs = async (service: string, qs = '') => (await server.api('GET', `/api/v1/services/${service}/logs${qs}`)).body.entries as any[];

describe('runtime logs', () => {
  it('keeps app output tagged with instance and deployment, and the platform events', async () => {
    const r = await server.app('hello');
    expect(r.status).toBe(200);
    const entries = await waitFor(async () => {
      const e = await logs('hello');
      return e.some((x) => x.event === 'stopped') ? e : null;
    });
    const out = entries.find((e) => e.stream === 'stdout' && e.message.startsWith('listening on'));
    expect(out).toMatchObject({ instanceId: expect.stringMatching(/^i-/), deploymentId: expect.stringMatching(/^d-/) });
    const names = entries.filter((e) => e.stream === 'event').map((e) => e.event);
    expect(names).toEqual(expect.arrayContaining(['service_created', 'deploy_queued', 'deploy_building', 'deploy_live', 'cold_start', 'idle_stop', 'stopped']));
    const cold = entries.find((e) => e.event === 'cold_start');
    expect(cold.message).toMatch(/cold start of \d+ ms/);
    expect(cold.fields.durationMs).toBeGreaterThan(0);
  });

  it('records a failed start with its exit code and stderr', async () => {
    expect((await server.app('exits')).status).toBe(502);
    const entries = await waitFor(async () => {
      const e = await logs('exits');
      return e.some((x) => x.event === 'start_failed') ? e : null;
    });
    expect(entries.find((e) => e.event === 'start_failed').message).toContain('exit code 3');
    expect(entries.some((e) => e.stream === 'stderr' && e.message.includes('DATABASE_URL is not set'))).toBe(true);
  });

  it('searches by text and time range', async () => {
    const hits = await logs('exits', '?q=DATABASE_URL');
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((e) => e.message.includes('DATABASE_URL'))).toBe(true);
    expect(await logs('exits', `?until=${Date.now() - 3_600_000}`)).toEqual([]);
    expect((await logs('exits', '?since=1h')).length).toBeGreaterThan(0);
    const bad = await server.api('GET', '/api/v1/services/exits/logs?since=yesterday-ish');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('ERR_VALIDATION');
  });

  it('follows live over SSE and resumes from Last-Event-ID', async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${server.adminUrl}/api/v1/services/hello/logs?follow=1&since=1s`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: ctrl.signal });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const got = server.app('hello', '/live');
    await waitFor(async () => {
      const { value } = await reader.read();
      text += value ?? '';
      return text.includes('cold_start');
    });
    await got;
    ctrl.abort();
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids.length).toBeGreaterThan(0);
    const last = ids[ids.length - 1]!;
    const firstId = ids[0]!;
    // resume from an earlier id: everything after it, nothing before or at it
    const resumed = await fetch(`${server.adminUrl}/api/v1/services/hello/logs?follow=1`, { headers: { authorization: `Bearer ${TOKEN}`, 'last-event-id': String(firstId) }, signal: AbortSignal.timeout(1500) });
    const r2 = resumed.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text2 = '';
    await waitFor(async () => {
      const { value } = await r2.read();
      text2 += value ?? '';
      return text2.includes(`id: ${last}\n`);
    }).catch(() => {});
    const ids2 = [...text2.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids2[0]).toBeGreaterThan(firstId);
    expect(ids2).toContain(last);
    await r2.cancel().catch(() => {});
  });
});
