// The certificate schedule over days of fake time, with a fake CA: failures back off so a name
// is never tried more than three times in an hour (Let's Encrypt allows five failed validations
// per name per hour) and alternate between the challenges; Let's Encrypt's 50 new certificates
// per registered domain per week are counted and said; renewal starts with 30 days left and a
// failed renewal leaves the certificate serving.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Acme, ChallengeBoard } from '../../../runtime/certs/acme.ts';
import type { DnsChecker } from '../../../runtime/certs/dns-check.ts';
import { createCertManager, type CertManager } from '../../../runtime/certs/manager.ts';
import { registeredDomain, renewalAt, retryDelay } from '../../../runtime/certs/policy.ts';
import { LETS_ENCRYPT } from '../../../runtime/core/config.ts';
import { silentLogger } from '../../../runtime/core/log.ts';
import { createCertTable } from '../../../runtime/router/tls-certs.ts';
import { createCertificateStore, type CertificateStore } from '../../../runtime/store/certificates.ts';
import { openStore, type Store } from '../../../runtime/store/index.ts';
import { tempDir } from '../../helpers/server.ts';

const MIN = 60_000;
const DAY = 86_400_000;

describe('policy', () => {
  it('renews 30 days ahead, or with a third of a short lifetime left', () => {
    expect(renewalAt(0, 90 * DAY)).toBe(60 * DAY);
    expect(renewalAt(0, 6 * DAY)).toBe(4 * DAY);
    expect(renewalAt(0, 30_000)).toBe(20_000);
  });
  it('backs off after failures', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(retryDelay)).toEqual([MIN, 10 * MIN, 60 * MIN, 180 * MIN, 360 * MIN, 720 * MIN, DAY, DAY]);
  });
  it('counts names under their registered domain', () => {
    expect(registeredDomain('a.b.example.com')).toBe('example.com');
    expect(registeredDomain('*.apps.example.com')).toBe('example.com');
    expect(registeredDomain('shop.example.co.uk')).toBe('example.co.uk');
    expect(registeredDomain('example.io')).toBe('example.io');
  });
});

describe('certificate manager', () => {
  let dir: string;
  let db: Store;
  let store: CertificateStore;
  let manager: CertManager | null = null;
  const events: { event: string; fields: Record<string, unknown> }[] = [];

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(Date.UTC(2026, 0, 1));
    dir = tempDir('cellhost-certs-unit-');
    db = openStore(path.join(dir, 'cellhost.db'));
    store = createCertificateStore(db.db, () => Buffer.alloc(32, 1));
    events.length = 0;
  });

  afterEach(async () => {
    vi.useRealTimers();
    await manager?.close();
    manager = null;
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const dns: DnsChecker = {
    check: async (name, _target, now) => ({ ok: true, found: ['127.0.0.1'], message: `${name} points here`, checkedAt: now }),
    expectedRecords: async () => [],
    txt: async () => [],
  };

  /** a fake CA; without renewalInfo, one that offers no renewal information (ARI) */
  function start(ca: Pick<Acme, 'order'> & Partial<Acme>, opts: { directory?: string; domains?: string[] } = {}): CertManager {
    const acme: Acme = { renewalInfo: async () => null, ...ca };
    const board: ChallengeBoard = { http01: new Map(), alpn: new Map() };
    manager = createCertManager({
      store,
      services: () => [{ name: 'web', domains: opts.domains ?? ['shop.example.com'] }],
      table: createCertTable(),
      board,
      acme,
      dns,
      domain: 'localhost',
      wildcard: false,
      challenges: ['http-01', 'tls-alpn-01'],
      directory: opts.directory ?? 'https://ca.example/dir',
      userCert: null,
      clock: { now: () => Date.now() },
      log: silentLogger,
      onEvent: (_service, event, fields) => events.push({ event, fields }),
    });
    manager.start();
    return manager;
  }

  it('a name the CA keeps refusing is tried at most three times in any hour, alternating challenges', async () => {
    const attempts: { at: number; challenge: string }[] = [];
    start({
      order: async (_name, challenge) => {
        attempts.push({ at: Date.now(), challenge });
        throw new Error('Order included an identifier for which issuance is forbidden by policy');
      },
    });
    await vi.advanceTimersByTimeAsync(12 * 60 * MIN);
    const t0 = attempts[0]!.at;
    expect(attempts.map((a) => (a.at - t0) / MIN)).toEqual([0, 1, 11, 71, 251, 611]);
    for (const a of attempts) expect(attempts.filter((b) => b.at >= a.at && b.at < a.at + 60 * MIN).length).toBeLessThanOrEqual(3);
    expect(attempts.map((a) => a.challenge).slice(0, 4)).toEqual(['http-01', 'tls-alpn-01', 'http-01', 'tls-alpn-01']);
    const view = manager!.view('shop.example.com');
    expect(view).toMatchObject({ status: 'failed', error: 'Order included an identifier for which issuance is forbidden by policy' });
    expect(events.filter((e) => e.event === 'certificate_failed')).toHaveLength(6);
  });

  it("stops at Let's Encrypt's 50 new certificates a week for a registered domain, and says when the next can be had", async () => {
    const order = vi.fn(async () => {
      throw new Error('not called');
    });
    for (let i = 0; i < 50; i++) store.recordOrder({ name: `s${i}.example.com`, registeredDomain: 'example.com', directory: LETS_ENCRYPT, renewal: false, outcome: 'issued', at: Date.now() - DAY + i });
    start({ order }, { directory: LETS_ENCRYPT });
    await vi.advanceTimersByTimeAsync(MIN);
    expect(order).not.toHaveBeenCalled();
    const view = manager!.view('shop.example.com');
    expect(view.status).toBe('failed');
    expect(view.error).toMatch(/50 new certificates were issued for example\.com in the last 7 days and Let's Encrypt allows 50: the next can be ordered at 2026-01-07T00:00:00\.000Z/);
    expect(view.nextAttemptAt).toBe('2026-01-07T00:00:00.000Z');
  });

  it('renews with 30 days left; a failed renewal keeps the certificate serving and retries', async () => {
    // a real 90-day certificate, so the context can be built
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '90', '-subj', '/CN=shop.example.com'], { cwd: dir, stdio: 'ignore' });
    const issued = { certPem: fs.readFileSync(path.join(dir, 'c.pem'), 'utf8'), keyPem: fs.readFileSync(path.join(dir, 'k.pem'), 'utf8'), notBefore: Date.now(), notAfter: Date.now() + 90 * DAY };
    const calls: number[] = [];
    let fail = false;
    start({
      order: async () => {
        calls.push(Date.now());
        if (fail) throw new Error('the CA could not be reached (ECONNREFUSED)');
        return issued;
      },
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toHaveLength(1);
    expect(manager!.hasCertificate('shop.example.com')).toBe(true);
    expect(manager!.view('shop.example.com').nextAttemptAt).toBe(new Date(issued.notAfter - 30 * DAY).toISOString());
    fail = true;
    await vi.advanceTimersByTimeAsync(60 * DAY - 1000 + 30_000);
    expect(calls).toHaveLength(2);
    expect(calls[1]! - calls[0]!).toBeGreaterThanOrEqual(60 * DAY - 1000);
    const view = manager!.view('shop.example.com');
    expect(view).toMatchObject({ status: 'issued', error: 'the CA could not be reached (ECONNREFUSED)' });
    expect(manager!.hasCertificate('shop.example.com')).toBe(true);
    expect(events.at(-1)).toMatchObject({ event: 'certificate_failed', fields: { renewal: true } });
    fail = false;
    await vi.advanceTimersByTimeAsync(2 * MIN);
    expect(calls).toHaveLength(3);
    expect(events.at(-1)).toMatchObject({ event: 'certificate_renewed' });
    // the CA handed back a certificate that is already due (here: the same one): no loop, an hour's wait
    await vi.advanceTimersByTimeAsync(30 * MIN);
    expect(calls).toHaveLength(3);
  });

  function makeCert(name: string): { certPem: string; keyPem: string } {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '90', '-subj', '/CN=shop.example.com'], { cwd: dir, stdio: 'ignore' });
    return { certPem: fs.readFileSync(path.join(dir, `${name}.pem`), 'utf8'), keyPem: fs.readFileSync(path.join(dir, `${name}.key`), 'utf8') };
  }

  it("renews in the CA's suggested window when it moves ahead of the dates, naming the certificate it replaces, and asks again when the CA says", async () => {
    const first = makeCert('first');
    const second = makeCert('second');
    const t0 = Date.now();
    const far = { start: t0 + 60 * DAY, end: t0 + 62 * DAY };
    // the CA's window for the first certificate, which it moves (as it does before revoking)
    let firstWindow = far;
    const asked: number[] = [];
    const orders: { at: number; replacing: string | undefined }[] = [];
    start({
      order: async (_name, _challenge, replacing) => {
        orders.push({ at: Date.now(), replacing });
        return { ...(orders.length === 1 ? first : second), notBefore: Date.now(), notAfter: Date.now() + 90 * DAY };
      },
      renewalInfo: async (certPem) => {
        if (certPem === first.certPem) asked.push(Date.now());
        return { window: certPem === first.certPem ? firstWindow : far, recheckMs: 6 * 60 * MIN, explanationUrl: 'https://ca.example/incident' };
      },
    });
    await vi.advanceTimersByTimeAsync(1000);
    // issued, then asked at once; the window is two months away: asked again in six hours
    expect(orders).toHaveLength(1);
    expect(asked).toEqual([t0]);
    expect(manager!.view('shop.example.com').nextAttemptAt).toBe(new Date(t0 + 6 * 60 * MIN).toISOString());
    await vi.advanceTimersByTimeAsync(12 * 60 * MIN);
    expect(asked.map((a) => (a - t0) / MIN)).toEqual([0, 360, 720]);
    expect(orders).toHaveLength(1);
    // the CA moves the window to tomorrow, one hour wide: renewed within it, not before
    firstWindow = { start: t0 + DAY, end: t0 + DAY + 60 * MIN };
    await vi.advanceTimersByTimeAsync(DAY + 61 * MIN - 12 * 60 * MIN);
    expect(orders).toHaveLength(2);
    expect(orders[1]!.at).toBeGreaterThanOrEqual(firstWindow.start);
    expect(orders[1]!.at).toBeLessThanOrEqual(firstWindow.end);
    expect(orders[1]!.replacing).toBe(first.certPem);
    expect(events.at(-1)).toMatchObject({ event: 'certificate_renewed', fields: { suggestedByCa: true, explanationUrl: 'https://ca.example/incident' } });
    expect(manager!.view('shop.example.com')).toMatchObject({ status: 'issued', error: null });
  });

  it("a CA whose window stays in the past gets at most one early renewal an hour", async () => {
    const certs = [makeCert('a'), makeCert('b'), makeCert('c')];
    const orders: number[] = [];
    start({
      order: async () => {
        orders.push(Date.now());
        // (without the limit, renewals would follow each other at once: the test would never end)
        if (orders.length > 10) throw new Error('renewed in a loop');
        return { ...certs[Math.min(orders.length - 1, 2)]!, notBefore: Date.now(), notAfter: Date.now() + 90 * DAY };
      },
      renewalInfo: async () => ({ window: { start: Date.now() - DAY, end: Date.now() - 60 * MIN }, recheckMs: MIN, explanationUrl: null }),
    });
    await vi.advanceTimersByTimeAsync(1000);
    // issued, renewed at once as the window asks, and then not again for an hour
    expect(orders).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(59 * MIN);
    expect(orders).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(2 * MIN);
    expect(orders).toHaveLength(3);
  });

  it('renewal information that cannot be had is no failure: the dates hold, and the CA is asked again later', async () => {
    const cert = makeCert('cert');
    const t0 = Date.now();
    let asks = 0;
    const orders: number[] = [];
    start({
      order: async () => {
        orders.push(Date.now());
        return { ...cert, notBefore: t0, notAfter: t0 + 90 * DAY };
      },
      renewalInfo: async () => {
        asks++;
        throw new Error('the CA could not be reached (ECONNREFUSED)');
      },
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(manager!.view('shop.example.com')).toMatchObject({ status: 'issued', error: null, nextAttemptAt: new Date(t0 + 6 * 60 * MIN).toISOString() });
    await vi.advanceTimersByTimeAsync(60 * DAY - 1000 - MIN);
    expect(orders).toHaveLength(1);
    expect(asks).toBe(240);
    expect(events.filter((e) => e.event === 'certificate_failed')).toEqual([]);
    await vi.advanceTimersByTimeAsync(2 * MIN);
    expect(orders).toHaveLength(2);
    expect(events.at(-1)).toMatchObject({ event: 'certificate_renewed', fields: {} });
    expect(events.at(-1)!.fields.suggestedByCa).toBeUndefined();
  });

  it('with HTTPS off orders nothing and keeps what is stored', async () => {
    store.saveState({ name: 'old.example.com', service: 'web', status: 'issued', certPem: null, notBefore: 1, notAfter: 2, challenge: 'http-01', error: null, failures: 0, lastAttemptAt: 1, nextAttemptAt: 2, dns: null, updatedAt: 1 });
    manager = createCertManager({
      store,
      services: () => [{ name: 'web', domains: ['shop.example.com'] }],
      table: createCertTable(),
      board: { http01: new Map(), alpn: new Map() },
      acme: null,
      dns,
      domain: 'localhost',
      wildcard: false,
      challenges: ['http-01'],
      directory: 'https://ca.example/dir',
      userCert: null,
      clock: { now: () => Date.now() },
      log: silentLogger,
      onEvent: () => {},
    });
    manager.start();
    manager.sync();
    await vi.advanceTimersByTimeAsync(DAY);
    expect(store.list().map((r) => r.name)).toEqual(['old.example.com']);
    expect(manager.view('shop.example.com')).toMatchObject({ status: 'none', message: 'HTTPS is off (set CELLHOST_HTTPS_ADDR)' });
  });

  it('drops a certificate when its domain is removed', async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '90', '-subj', '/CN=shop.example.com'], { cwd: dir, stdio: 'ignore' });
    const issued = { certPem: fs.readFileSync(path.join(dir, 'c.pem'), 'utf8'), keyPem: fs.readFileSync(path.join(dir, 'k.pem'), 'utf8'), notBefore: Date.now(), notAfter: Date.now() + 90 * DAY };
    let domains = ['shop.example.com'];
    const board: ChallengeBoard = { http01: new Map(), alpn: new Map() };
    manager = createCertManager({
      store,
      services: () => [{ name: 'web', domains }],
      table: createCertTable(),
      board,
      acme: { order: async () => issued, renewalInfo: async () => null },
      dns,
      domain: 'localhost',
      wildcard: false,
      challenges: ['http-01'],
      directory: 'https://ca.example/dir',
      userCert: null,
      clock: { now: () => Date.now() },
      log: silentLogger,
      onEvent: () => {},
    });
    manager.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(manager.hasCertificate('shop.example.com')).toBe(true);
    domains = [];
    manager.sync();
    expect(manager.hasCertificate('shop.example.com')).toBe(false);
    expect(store.get('shop.example.com')).toBeUndefined();
  });
});
