// The console in a real browser (Debian's chromium driven by playwright-core): log in, deploy
// the hello fixture through the Manual Deploy form with an uploaded archive, watch the build
// log arrive live, reach the app, change its env on the Environment page and see the app
// return it, see its logs and a counted request on Observability, and a crashing app's exit
// code on its service page, the instances' state change live on a service page, settings saved
// with the CPU the memory buys, a service deleted by typing its name, and a token created (its
// secret shown once) and revoked. Screenshots of each page go to UI_SCREENSHOTS (default
// $TMPDIR/cellhost-ui-screenshots).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../builder/sources/index.ts';
import { browserMissing, CHROMIUM, playwright, SCREENSHOTS } from '../helpers/browser.ts';
import { FIXTURES, requestRouter, startTestServer, tempDir, TOKEN, waitFor, type TestServer } from '../helpers/server.ts';

const missing = browserMissing();
if (missing.length && process.env.CI === 'true') {
  throw new Error(`the browser test needs ${missing.join(' and ')}`);
}

describe.skipIf(missing.length > 0)('web UI in chromium', () => {
  let server: TestServer;
  let context: import('playwright-core').BrowserContext;
  let page: import('playwright-core').Page;
  let profileDir: string;
  let workDir: string;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    profileDir = tempDir('cellhost-chromium-');
    workDir = tempDir('cellhost-ui-');
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    context = await playwright!.chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
    page.on('console', (m) => {
      // the refused login (401) and the form sent with mistakes (400) are meant to fail
      if (m.type() === 'error' && !/status of 40[01] /.test(m.text())) consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
  });

  afterAll(async () => {
    await context?.close();
    await server?.close();
    for (const dir of [profileDir, workDir, server?.dataDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const shot = (name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

  it('logs in with the token', async () => {
    await page.goto(server.adminUrl + '/services');
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.fill('#f-token', 'wrong-token');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('.field-error')).toContain('not valid');
    await shot('01-login-failed');
    await page.fill('#f-token', TOKEN);
    await page.click('button[type=submit]');
    await page.waitForURL('**/services');
    const cookies = await context.cookies(server.adminUrl);
    const session = cookies.find((c) => c.name === 'cellhost_session')!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(await page.textContent('main')).toContain('No services yet');
    await shot('02-services-empty');
  });

  it('deploys the hello app through the Manual Deploy form and shows the build log live', async () => {
    const archive = path.join(workDir, 'node-hello.tar.gz');
    fs.writeFileSync(archive, await packDirectory(path.join(FIXTURES, 'node-hello')));

    await page.click('text=Manual Deploy');
    await page.waitForURL('**/deploy');
    // a first try with mistakes: each error comes back beside its field
    await page.fill('#f-name', 'Hello UI');
    await page.fill('#f-memoryMb', '64');
    await page.click('#deploy-button');
    await page.waitForSelector('[data-field="name"] .field-error');
    expect(await page.textContent('[data-field="name"] .field-error')).toMatch(/^name: lowercase letters/);
    expect(await page.textContent('[data-field="memoryMb"] .field-error')).toMatch(/^memoryMb: .*128/);
    expect(await page.textContent('[data-field="archive"] .field-error')).toMatch(/^source: /);
    expect(await page.inputValue('#f-name')).toBe('Hello UI');
    await shot('03a-deploy-form-errors');
    await page.fill('#f-name', 'hello-ui');
    await page.selectOption('#f-runtime', 'node');
    // a multi-line build command that writes colours and takes a moment, so the log is followed live
    await page.fill('#f-buildCommand', "printf '\\033[1;32mcompiled in green\\033[0m\\n'\nsleep 1\necho second step done");
    await page.fill('#f-startCommand', 'node app.js');
    await page.fill('#f-port', '8080');
    await page.fill('#f-memoryMb', '256');
    // the CPU cap follows the memory size as it is typed (256 / 1769 of a core)
    await expect.poll(() => page.textContent('#cpu-cap')).toBe('14.5 %');
    await page.fill('#f-env', 'GREETING=hello from the form\n# a comment\nOTHER=1');
    await page.setInputFiles('#f-archive', archive);
    await shot('03-deploy-form');
    await page.click('#deploy-button');

    await page.waitForURL('**/deployments/d-*');
    const depId = new URL(page.url()).pathname.split('/').pop()!;
    // opened while the build runs (it sleeps a second), so what follows arrives over the stream
    expect(await page.getAttribute('#build-log', 'data-active')).toBe('1');
    expect(await page.textContent('.flash')).toContain('queued');
    // the page opened while the build ran: its log streams in and the page reloads at the end
    await page.waitForFunction(() => document.getElementById('build-log')?.textContent?.includes('is live'), null, { timeout: 30_000 });
    await page.waitForSelector('#deploy-status .badge-ok');
    // the page reloaded at the end of the stream: final state, the one-time message gone
    expect(await page.getAttribute('#build-log', 'data-active')).toBe('0');
    expect(await page.locator('.flash').count()).toBe(0);
    const log = await page.innerHTML('#build-log');
    expect(log).toContain('<span class="a-b a-f2">compiled in green</span>');
    expect(log).toContain('second step done');
    expect(await page.textContent('#deploy-status')).toContain('live');
    await shot('04-deployment-information');

    const dep = await server.api('GET', `/api/v1/deployments/${depId}`);
    expect(dep.body.status).toBe('live');
    const url = new URL((await page.textContent('#service-url'))!.trim());
    expect(url.hostname).toBe('hello-ui.localhost');
    // the browser cannot resolve *.localhost here: ask the router with the page's Host
    const res = await requestRouter(server.routerUrl, url.host, '/');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ hello: 'hello-ui', env: 'hello from the form' });
  });

  it('lists the service as live with its URL and CPU cap', async () => {
    await page.goto(server.adminUrl + '/services');
    const row = page.locator('tr[data-service="hello-ui"]');
    expect(await row.textContent()).toContain('live');
    expect(await row.textContent()).toContain('14.5 %');
    expect(await row.textContent()).toContain('http://hello-ui.localhost:');
    await shot('05-services');
  });

  it('adds a variable masked, reveals it, edits one and the app returns the new value', async () => {
    await page.goto(server.adminUrl + '/services/hello-ui/env');
    expect(await page.textContent('tr[data-var="GREETING"] .value')).toContain('••••');
    await page.fill('#f-name', 'API_KEY');
    await page.fill('#f-value-new', 'sk-secret-value-123');
    await page.click('form.add-var button[type=submit]');
    await page.waitForSelector('tr[data-var="API_KEY"]');
    expect(await page.textContent('.flash')).toContain('API_KEY added');
    expect(await page.textContent('tr[data-var="API_KEY"] .value')).toContain('••••');
    expect(await page.content()).not.toContain('sk-secret-value-123');
    await shot('06-environment-masked');

    await page.click('tr[data-var="API_KEY"] >> text=Reveal');
    expect(await page.textContent('tr[data-var="API_KEY"] .value')).toContain('sk-secret-value-123');
    expect(await page.content()).not.toContain('hello from the form');
    await shot('07-environment-revealed');

    await page.click('tr[data-var="GREETING"] >> text=Edit');
    expect(await page.inputValue('tr[data-var="GREETING"] textarea')).toBe('hello from the form');
    await shot('07b-environment-edit');
    await page.fill('tr[data-var="GREETING"] textarea', 'changed in the UI');
    await page.click('tr[data-var="GREETING"] button[type=submit]');
    await page.waitForSelector('.flash');
    expect(await page.textContent('.flash')).toContain('GREETING updated');
    // applied without a redeploy: the warm instance is replaced
    await waitFor(async () => (await server.app('hello-ui')).json?.env === 'changed in the UI', { timeoutMs: 15_000, what: 'the app to see the new value' });
  });

  it('shows logs, events and a counted request on Observability, and tails new lines live', async () => {
    await page.goto(server.adminUrl + '/services/hello-ui/observability');
    await page.waitForSelector('#tail-status[data-state="on"]');
    const logText = await page.textContent('#log-view');
    expect(logText).toContain('listening on');
    expect(logText).toContain('cold_start');
    expect(await page.textContent('#events')).toContain('deploy_live');
    // requests went through the router above: the Requests chart's data counts them
    const requests = page.locator('figure.chart', { hasText: 'Requests' });
    await expect.poll(async () => (await requests.locator('.chart-data').textContent()) ?? '').toMatch(/non-zero/);
    await shot('08-observability');

    // an env change starts a new instance; its output arrives through the live tail
    const before = await page.locator('#log-view .logline').count();
    await server.api('PUT', '/api/v1/services/hello-ui/env/TAIL_CHECK', { value: 'x' });
    await server.app('hello-ui');
    await page.waitForSelector('#log-view .logline.fresh', { timeout: 15_000 });
    expect(await page.locator('#log-view .logline').count()).toBeGreaterThan(before);
    const ids = await page.locator('#log-view .logline').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("shows a crashing app's exit code and last output on its service page", async () => {
    await server.deployFailing('crashy-ui', path.join(FIXTURES, 'node-exit'), { startCommand: 'node app.js' });
    const res = await server.app('crashy-ui');
    expect(res.status).toBe(502);
    await page.goto(server.adminUrl + '/services/crashy-ui');
    const failure = await page.textContent('#start-failure');
    expect(failure).toMatch(/code 3/);
    expect(failure).toContain('fatal: DATABASE_URL is not set');
    expect(await page.textContent('main')).toContain('start failing');
    await shot('09-service-start-failure');
  });

  it("shows a service's instances as they start, without a reload", async () => {
    const dep = await server.deploy('live-ui', path.join(FIXTURES, 'node-hello'), { startCommand: 'node app.js' });
    expect(dep.status).toBe('live');
    await page.goto(server.adminUrl + '/services/live-ui');
    await page.waitForSelector('#instances-live:not([hidden])');
    expect(await page.locator('#instances tr[data-instance]').count()).toBe(0);
    expect((await server.app('live-ui')).status).toBe(200);
    await page.waitForSelector('#instances tr[data-instance] td.state:text-is("ready")', { timeout: 10_000 });
    const id = await page.getAttribute('#instances tr[data-instance]', 'data-instance');
    expect((await server.api('GET', '/api/v1/services/live-ui')).body.instances.map((i: { id: string }) => i.id)).toContain(id);
    await shot('11-service-instances-live');
  });

  it('edits the settings: the CPU cap follows the memory typed, the service takes them', async () => {
    await page.goto(server.adminUrl + '/services/live-ui/settings');
    expect(await page.textContent('#cpu-cap')).toBe('57.9 %');
    await page.fill('#f-memoryMb', '512');
    await expect.poll(() => page.textContent('#cpu-cap')).toBe('28.9 %');
    await page.fill('#f-idleTimeoutS', '2m');
    await page.fill('#f-maxInstances', '3');
    await shot('12-settings');
    await page.click('#save-settings');
    await page.waitForSelector('.flash');
    expect(await page.textContent('.flash')).toBe('Saved: memoryMb, maxInstances, idleTimeoutS.');
    expect((await server.api('GET', '/api/v1/services/live-ui')).body).toMatchObject({ memoryMb: 512, maxInstances: 3, idleTimeoutS: 120 });
  });

  it('deletes a service only once its name is typed', async () => {
    await page.goto(server.adminUrl + '/services/live-ui/settings');
    expect(await page.isDisabled('#delete-button')).toBe(true);
    await page.fill('#f-confirm', 'live-u');
    expect(await page.isDisabled('#delete-button')).toBe(true);
    await page.fill('#f-confirm', 'live-ui');
    expect(await page.isDisabled('#delete-button')).toBe(false);
    await shot('13-delete-confirm');
    await page.click('#delete-button');
    await page.waitForURL('**/services');
    expect(await page.textContent('.flash')).toBe('Service live-ui deleted.');
    expect(await page.locator('tr[data-service="live-ui"]').count()).toBe(0);
    expect((await server.api('GET', '/api/v1/services/live-ui')).status).toBe(404);
  });

  it('creates a token whose secret is shown once, and revokes it', async () => {
    await page.click('header >> text=Tokens');
    await page.waitForURL('**/tokens');
    await page.fill('#f-name', 'browser made');
    await page.click('#create-token');
    await page.waitForSelector('#new-token-secret');
    const secret = (await page.textContent('#new-token-secret'))!.trim();
    expect(secret).toMatch(/^ch_/);
    await shot('14-token-created');
    const withIt = () => fetch(server.adminUrl + '/api/v1/services', { headers: { authorization: `Bearer ${secret}` } }).then((r) => r.status);
    expect(await withIt()).toBe(200);
    await page.reload();
    expect(await page.locator('#new-token-secret').count()).toBe(0);
    expect(await page.content()).not.toContain(secret);
    const row = page.locator('tr[data-token]', { hasText: 'browser made' });
    page.once('dialog', (d) => void d.accept());
    await row.locator('button', { hasText: 'Revoke' }).click();
    await page.waitForSelector('.flash');
    expect(await page.textContent('.flash')).toBe('Token browser made revoked.');
    expect(await page.locator('tr[data-token]', { hasText: 'browser made' }).count()).toBe(0);
    expect(await withIt()).toBe(401);
    await shot('15-token-revoked');
  });

  it('shows usage with cost', async () => {
    await page.goto(server.adminUrl + '/usage');
    expect(await page.textContent('table.usage')).toContain('hello-ui');
    await shot('10-usage');
    expect(consoleErrors).toEqual([]);
  });
});
