// Random and boundary bodies at every management route: never a 500, always a coded error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  await server.api('POST', '/api/v1/services', { name: 'target', runtime: 'node' });
});
afterAll(async () => {
  await server?.close();
});

// a seeded generator: failures reproduce
let seed = 0x2545f491;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;

const BOUNDARY: unknown[] = [
  null, true, false, 0, -1, 1.5, 2 ** 53, -(2 ** 53), 1e308, '', ' ', 'a'.repeat(70_000), '\u0000', '../../etc/passwd', '<script>', '💥', 'PORT',
  [], [1, 2], {}, { a: null }, 128, 127, 7076, 7077, 65535, 65536, 'node', 'python', 'rust', 'NaN',
];
const KEYS = ['name', 'runtime', 'buildCommand', 'startCommand', 'port', 'memoryMb', 'plan', 'minInstances', 'maxInstances', 'concurrency', 'idleTimeoutS', 'requestTimeoutS', 'healthPath', 'domains', 'rootDir', 'git', 'ref', 'value', 'vars', '__proto__', 'constructor',
  'schedule', 'timeZone', 'method', 'path', 'body', 'contentType', 'overlap', 'enabled', 'workers', 'maxAttempts', 'minBackoffMs', 'maxBackoffMs'];

function randomValue(depth = 0): unknown {
  const r = rand();
  if (r < 0.5 || depth > 2) return pick(BOUNDARY);
  if (r < 0.75) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(depth + 1));
  return randomObject(depth + 1);
}
function randomObject(depth = 0): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 5); i > 0; i--) o[pick(KEYS)] = randomValue(depth);
  return o;
}
/** a value as URL text: String(), or JSON for an object String() cannot print (a null prototype) */
function asText(v: unknown): string {
  try {
    return String(v);
  } catch {
    return JSON.stringify(v);
  }
}
function randomBody(): string {
  const r = rand();
  if (r < 0.1) return pick(['', '{', '[]', 'null', '"x"', '{"name":', '\u0000', '{"a":1}}']);
  if (r < 0.2) return JSON.stringify(randomValue());
  return JSON.stringify(randomObject());
}

const ROUTES: [string, string][] = [
  ['POST', '/api/v1/services'],
  ['PATCH', '/api/v1/services/target'],
  ['PATCH', '/api/v1/services/nope'],
  ['POST', '/api/v1/services/target/deployments'],
  ['PUT', '/api/v1/services/target/env'],
  ['PUT', '/api/v1/services/target/env/KEY'],
  ['PUT', '/api/v1/services/target/env/bad-key'],
  ['POST', '/api/v1/tokens'],
  ['GET', '/api/v1/services/target/logs?since=%s'],
  ['GET', '/api/v1/usage?from=%s'],
  ['GET', '/api/v1/services/target/metrics?window=%s'],
  ['GET', '/api/v1/services/target/deployments?limit=%s'],
  ['POST', '/api/v1/deployments/%s/promote'],
  ['POST', '/api/v1/services/target/cron'],
  ['PATCH', '/api/v1/services/target/cron/nope'],
  ['GET', '/api/v1/services/target/cron/%s/runs?limit=%s'],
  ['PATCH', '/api/v1/services/target/task-queue'],
  ['GET', '/api/v1/services/target/tasks?status=%s&cursor=%s'],
  ['GET', '/api/v1/tasks/%s'],
  ['POST', '/api/v1/tasks/%s/retry'],
];

describe('API fuzz', () => {
  it('3000 random bodies: no 500, every error coded', async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const [method, template] = ROUTES[i % ROUTES.length]!;
      const p = template.replaceAll('%s', () => encodeURIComponent(asText(randomValue())));
      const body = method === 'GET' ? undefined : randomBody();
      const ct = rand() < 0.9 ? 'application/json' : pick(['text/plain', 'application/gzip', 'application/zip', '']);
      const res = await server.api(method, p, body, ct ? { 'content-type': ct } : {});
      const key = `${method} ${template} ${res.status}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (res.status >= 500 || (res.status >= 400 && !/^ERR_[A-Z_]+$/.test(res.body?.error?.code ?? ''))) {
        throw new Error(`${method} ${p.slice(0, 120)} with ${JSON.stringify(body)?.slice(0, 300)} → ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      }
    }
    // the platform is still healthy and the target service intact
    expect((await server.api('GET', '/api/v1/services/target')).status).toBe(200);
    expect(seen.size).toBeGreaterThan(10);
  }, 120_000);
});
