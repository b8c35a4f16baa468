// HTTPS in a real browser: Debian's Chromium (driven by playwright-core) trusts Pebble's root
// through an NSS database of its own, loads an app whose certificate cellhost got from Pebble,
// over HTTP/2 and, with HTTP/2 turned off, over HTTP/1.1; without the root it refuses the page.
// The console's Domains tab shows the certificate and takes a custom domain.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserMissing, CHROMIUM, playwright, SCREENSHOTS } from '../helpers/browser.ts';
import { acmePlatformEnv, pebbleMissing, startPebble, type Pebble } from '../helpers/pebble.ts';
import { FIXTURES, startTestServer, tempDir, TOKEN, waitFor, type TestServer } from '../helpers/server.ts';
import { freePortSync } from '../helpers/subprocess-server.ts';

const CERTUTIL = '/usr/bin/certutil';
const missing = [...browserMissing(), ...(fs.existsSync(CERTUTIL) ? [] : [`${CERTUTIL} (apt-get install libnss3-tools)`]), ...pebbleMissing()];
if (missing.length && process.env.CI === 'true') throw new Error(`the HTTPS browser test needs ${missing.join(' and ')}`);

/**
 * page.goto, again when Chromium reports ERR_NETWORK_CHANGED: the platform adding or removing an
 * instance's veth on this host is a network change to Chromium, which then drops what it was loading
 */
async function goto(page: import('playwright-core').Page, url: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await page.goto(url);
    } catch (err) {
      if (attempt >= 5 || !/ERR_NETWORK_CHANGED|interrupted by another navigation to "chrome-error/.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe.skipIf(missing.length > 0)('HTTPS in chromium', () => {
  let pebble: Pebble;
  let server: TestServer;
  let ports: { http: number; https: number };
  const dirs: string[] = [];

  /** a HOME whose NSS database trusts `root` (or nothing), as Chromium on Linux reads it */
  function browserHome(root: string | null): string {
    const home = tempDir('cellhost-chromium-home-');
    dirs.push(home);
    const db = path.join(home, '.pki', 'nssdb');
    fs.mkdirSync(db, { recursive: true });
    execFileSync(CERTUTIL, ['-N', '-d', `sql:${db}`, '--empty-password'], { stdio: 'ignore' });
    if (root) execFileSync(CERTUTIL, ['-A', '-d', `sql:${db}`, '-n', 'pebble-root', '-t', 'C,,', '-i', root], { stdio: 'ignore' });
    return home;
  }

  async function launch(home: string, extra: string[] = []) {
    const profile = tempDir('cellhost-chromium-');
    dirs.push(profile);
    return playwright!.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...FLAGS, '--host-resolver-rules=MAP *.apps.test 127.0.0.1, MAP *.example.test 127.0.0.1', ...extra],
      env: { ...process.env, HOME: home },
      viewport: { width: 1280, height: 900 },
    });
  }

  beforeAll(async () => {
    ports = { http: await freePortSync(), https: await freePortSync() };
    pebble = await startPebble({ httpPort: ports.http, tlsPort: ports.https });
    server = await startTestServer({
      env: acmePlatformEnv(pebble, ports),
    });
    expect((await server.deploy('web', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js', buildCommand: 'true', idleTimeoutS: 120 })).status).toBe('live');
    await waitFor(
      async () => {
        const { body } = await server.api('GET', '/api/v1/services/web/domains');
        return body.domains[0].status === 'issued';
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'the certificate' },
    );
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await pebble?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('loads the app over HTTP/2 and over HTTP/1.1, the certificate verified against Pebble\'s root', async () => {
    const home = browserHome(pebble.rootFile);
    for (const [flags, protocol] of [[[], 'h2'], [['--disable-http2'], 'http/1.1']] as const) {
      const context = await launch(home, [...flags]);
      try {
        const page = context.pages()[0] ?? (await context.newPage());
        const res = await goto(page, `https://web.apps.test:${ports.https}/from-chromium`);
        expect(res?.status()).toBe(200);
        expect(JSON.parse((await page.textContent('body'))!)).toMatchObject({ hello: 'web', path: '/from-chromium' });
        expect(await page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol)).toBe(protocol);
        const security = await res!.securityDetails();
        expect(security?.issuer).toMatch(/Pebble Intermediate/);
        expect(security?.subjectName).toBe('web.apps.test');
        // plain HTTP is sent to HTTPS
        const plain = await goto(page, `http://web.apps.test:${ports.http}/plain`);
        expect(page.url()).toBe(`https://web.apps.test:${ports.https}/plain`);
        expect(plain?.status()).toBe(200);
        await page.screenshot({ path: path.join(SCREENSHOTS, `https-${protocol.replace('/', '')}.png`) });
      } finally {
        await context.close();
      }
    }
  });

  it('refuses the page when the browser does not trust Pebble', async () => {
    const context = await launch(browserHome(null));
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      await expect(goto(page, `https://web.apps.test:${ports.https}/`)).rejects.toThrow(/ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await context.close();
    }
  });

  it('the console shows the certificate and adds a custom domain, which gets one too', async () => {
    const context = await launch(browserHome(pebble.rootFile));
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      page.setDefaultTimeout(15_000);
      await goto(page, `${server.adminUrl}/login`);
      await page.fill('#f-token', TOKEN);
      await page.click('button[type=submit]');
      await page.waitForURL('**/services');
      await goto(page, `${server.adminUrl}/services/web/domains`);
      expect(await page.textContent('tr[data-domain="web.apps.test"]')).toMatch(/issued\s*expires/);
      // a bad name comes back with its reason beside the field
      await page.fill('#f-domain', 'Shop.Example.test');
      await page.click('.add-domain button[type=submit]');
      expect(await page.textContent('[data-field="domain"] .field-error')).toContain('send it as "shop.example.test"');
      await page.fill('#f-domain', 'shop.example.test');
      await page.click('.add-domain button[type=submit]');
      await page.waitForSelector('tr[data-domain="shop.example.test"]');
      expect(await page.textContent('tr[data-domain="shop.example.test"]')).toContain('CNAME web.apps.test');
      await expect
        .poll(
          async () => {
            await page.reload();
            return page.textContent('tr[data-domain="shop.example.test"]');
          },
          { timeout: 30_000, interval: 500 },
        )
        .toMatch(/issued/);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'https-domains.png'), fullPage: true });
      // the service's HTTPS settings
      await page.check('#f-hsts');
      await page.click('.https-settings button[type=submit]');
      await page.waitForSelector('.flash');
      expect((await server.api('GET', '/api/v1/services/web')).body).toMatchObject({ httpsRedirect: true, hsts: true });
      const app = await goto(page, `https://shop.example.test:${ports.https}/`);
      expect(app?.status()).toBe(200);
      expect(JSON.parse((await page.textContent('body'))!)).toMatchObject({ hello: 'web' });
    } finally {
      await context.close();
    }
  });
});
