// createUi on its own (app.request, no socket) with fake control objects: what the pages say
// when metrics and usage are not wired in, and that they draw the charts when they are.
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../runtime/core/log.ts';
import type { TokenInfo } from '../../../runtime/store/tokens.ts';
import { createUi } from '../../../ui/app.tsx';
import type { ServiceMetrics, UiDeps } from '../../../ui/deps.ts';
import { createSessions } from '../../../ui/session.ts';

const NOW = Date.UTC(2024, 4, 1, 12, 0);
const token: TokenInfo = { id: 'tok_1', name: 'admin', createdAt: '2024-01-01T00:00:00Z', lastUsedAt: null };

function setup(extra: Partial<UiDeps> = {}) {
  const tokens = { list: () => [token], verify: () => undefined };
  const sessions = createSessions({ tokens: tokens as never, now: () => NOW });
  const service = { name: 'web', url: 'http://web.localhost:8080', instances: [], liveDeploymentId: null, runtime: 'node', memoryMb: 256 };
  const deps = {
    store: { tokens, logs: { query: () => [] }, deployments: { listForService: () => [] }, services: { get: () => service } },
    services: { get: () => service, list: () => [service] },
    sink: { flush: () => {} },
    sessions,
    now: () => new Date(NOW).toISOString(),
    log: silentLogger,
    maxUploadBytes: 1024 * 1024,
    uploadDir: '/nonexistent',
    ...extra,
  } as unknown as UiDeps;
  const ui = createUi(deps);
  const s = sessions.create(token);
  const get = (p: string) => ui.request(p, { headers: { cookie: `cellhost_session=${s.id}` } });
  return { ui, get };
}

describe('createUi without metrics and usage', () => {
  it('observability says the metrics are not there instead of drawing anything', async () => {
    const { get } = setup();
    const res = await get('/services/web/observability');
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('id="metrics-unavailable"');
    expect(html).toContain('metrics arrive with the metrics module');
    expect(html).not.toContain('<svg');
  });

  it('usage says it is not available; the services list shows n/a for requests and cost', async () => {
    const { get } = setup();
    expect(await (await get('/usage')).text()).toContain('id="usage-unavailable"');
    const list = await (await get('/services')).text();
    expect(list).toContain('n/a');
    expect(list).toContain('256 MB · 14.5 %');
  });

  it('redirects to the login without a session', async () => {
    const { ui } = setup();
    const res = await ui.request('/services/web/observability?window=24h');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/login?next=%2Fservices%2Fweb%2Fobservability%3Fwindow%3D24h');
  });
});

describe('createUi with metrics', () => {
  it('draws the six charts from the series it is given, for the window asked', async () => {
    const windows: string[] = [];
    const pt = (v: number) => [{ t: NOW - 120_000, v: 0 }, { t: NOW - 60_000, v }];
    const metrics = (_s: string, w: string): ServiceMetrics => {
      windows.push(w);
      return { requests: pt(7), errors4xx: pt(1), errors5xx: pt(0), latencyP50: pt(12), latencyP95: pt(40), latencyP99: pt(90), coldStarts: pt(1), coldStartMs: pt(150), instances: pt(1), gbSeconds: pt(0.25) };
    };
    const { get } = setup({ metrics });
    const html = await (await get('/services/web/observability?window=24h')).text();
    expect(windows).toEqual(['24h']);
    expect(html.match(/<figure class="chart"/g)).toHaveLength(6);
    expect(html).toContain('all (total 7)');
    expect(html).toContain('p99 (max 90)');
    expect(html).not.toContain('metrics-unavailable');
  });
});
