// Webhook deliveries as the forges send them, from the recorded-shape fixtures in
// test/fixtures/webhooks (headers and body per forge and event, after the forges' documented
// payloads): a test changes what it needs (ref, commit, clone URL, ids) and signs the body as the
// forge would.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { requestRouter } from './server.ts';

const DIR = fileURLToPath(new URL('../fixtures/webhooks/', import.meta.url));

export type FixtureName = 'github-push' | 'github-ping' | 'github-pull_request' | 'gitlab-push' | 'gitlab-merge_request' | 'gitea-push' | 'gitea-pull_request';

export interface Delivery {
  headers: Record<string, string>;
  body: string;
}

/** a fixture, its body changed by `edit` (given the parsed JSON) and its delivery ids made new */
export function delivery(name: FixtureName, edit: (body: any) => void = () => {}): { headers: Record<string, string>; json: any } {
  const fixture = JSON.parse(fs.readFileSync(`${DIR}${name}.json`, 'utf8')) as { headers: Record<string, string>; body: unknown };
  const json = fixture.body as any;
  edit(json);
  const id = crypto.randomUUID();
  const headers = { ...fixture.headers };
  for (const k of Object.keys(headers)) if (/delivery$|event-uuid$/i.test(k)) headers[k] = id;
  return { headers, json };
}

const hmac = (secret: string, body: string) => crypto.createHmac('sha256', secret).update(body).digest('hex');

/** signs (or, for GitLab, adds the token to) a delivery as its forge does */
export function sign(d: { headers: Record<string, string>; json: any }, secret: string | null): Delivery {
  const body = JSON.stringify(d.json);
  const headers = { ...d.headers };
  if (secret !== null) {
    if ('X-Gitlab-Event' in headers) headers['X-Gitlab-Token'] = secret;
    else if ('X-Gitea-Event' in headers) headers['X-Gitea-Signature'] = hmac(secret, body);
    else if ('X-GitHub-Event' in headers) {
      headers['X-Hub-Signature'] = `sha1=${crypto.createHmac('sha1', secret).update(body).digest('hex')}`;
      headers['X-Hub-Signature-256'] = `sha256=${hmac(secret, body)}`;
    } else headers['X-Cellhost-Signature'] = `sha256=${hmac(secret, body)}`;
  }
  return { headers, body };
}

/** a generic delivery: {ref, commit} signed with X-Cellhost-Signature */
export function genericDelivery(json: Record<string, unknown>, secret: string): Delivery {
  return sign({ headers: { 'Content-Type': 'application/json', 'X-Cellhost-Delivery': crypto.randomUUID() }, json }, secret);
}

/** POSTs a delivery to /hooks/<service> on the router, with the Host given (default the bare domain) */
export function post(routerUrl: string, service: string, d: Delivery, host = 'localhost') {
  return requestRouter(routerUrl, host, `/hooks/${service}`, { method: 'POST', headers: d.headers, body: d.body });
}
