// POST /hooks/<service> on the public router: forges' webhooks. The router hands a request here
// only when no service owns its Host (the base domain itself, an IP address, any name no service
// or custom domain claims), so an app's own /hooks/ paths are always the app's.
//
// In order, each refusal with its code (and, once the service is known, recorded as a delivery
// and logged as a service event):
//   429 ERR_HOOK_RATE_LIMITED  past 60 deliveries a minute from one address, or for one service
//   404 ERR_SERVICE_NOT_FOUND  no such service (not recorded: there is no service to record it for)
//   413 ERR_BODY_TOO_LARGE     a body over 1 MB
//   401 ERR_HOOK_UNSIGNED      no signature (or token) header of a forge cellhost knows
//   401 ERR_HOOK_SIGNATURE     a signature that does not match the service's secret
//   409 ERR_HOOK_REPLAYED      a delivery id, or the very body, accepted before
//   400 ERR_HOOK_MALFORMED     a body that is not the JSON its event has
// then the delivery is acted on (act.ts): 202 when it deployed, 200 otherwise, the outcome in the
// body and in the service's deliveries.
import crypto from 'node:crypto';
import http from 'node:http';
import type { Services } from '../control/types.ts';
import type { BranchDeploys } from '../control/branch-deploys.ts';
import type { Clock } from '../core/clock.ts';
import { CellhostError, describeError, isCellhostError, type ErrorCode } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { sourceKey } from '../core/login-limiter.ts';
import { serviceNameSchema } from '../core/names.ts';
import type { RouterRequest } from '../router/request.ts';
import type { HookStore, NewDelivery } from '../store/hooks.ts';
import { actOnEvent, type Outcome } from './act.ts';
import { parseEvent, readBody } from './events.ts';
import { createRateLimiter } from './rate-limit.ts';
import { identifySender, verifySender, type Sender } from './signatures.ts';

export const MAX_HOOK_BODY = 1024 * 1024;
const PREFIX = '/hooks/';

export interface HookReceiverDeps {
  hooks: HookStore;
  services: Services;
  branches: BranchDeploys;
  clock: Clock;
  log: Logger;
  onEvent(service: string, event: string, fields: Record<string, unknown>): void;
  /** deliveries a minute, per source address and per service (default 60) */
  ratePerMinute?: number;
}

export interface HookReceiver {
  /** takes the request when it is one for /hooks/ (answering it); false leaves it to the router */
  handle(req: RouterRequest, requestId: string): boolean;
}

/** the JSON the receiver answers, as every platform answer: {delivery} or {error: {code, message}} */
function answer(req: RouterRequest, status: number, body: unknown, requestId: string, extra: string[] = []): void {
  const res = req.res;
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  const headers = ['content-type', 'application/json', 'cache-control', 'no-store', 'x-request-id', requestId, ...extra, 'content-length', String(Buffer.byteLength(text))];
  // a body left unread (refused early) would be read for nothing: close after the answer
  res.writeHead(status, http.STATUS_CODES[status] ?? '', headers, { close: !req.complete, contentLength: true });
  res.end(text);
}

function refusal(err: CellhostError): { error: { code: string; message: string } } {
  return { error: { code: err.code, message: err.message } };
}

/** reads the body, at most `max` bytes: null when it is larger */
function readLimited(req: RouterRequest, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const body = req.body;
    if (!body) return resolve(Buffer.alloc(0));
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    body.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) {
        done = true;
        req.dump();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    body.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks));
      done = true;
    });
    body.on('error', (err) => {
      if (!done) reject(err);
      done = true;
    });
    body.on('close', () => {
      if (!done) reject(new Error('the client went away'));
      done = true;
    });
  });
}

export function createHookReceiver(deps: HookReceiverDeps): HookReceiver {
  const perMinute = deps.ratePerMinute ?? 60;
  const now = () => deps.clock.now();
  const bySource = createRateLimiter({ limit: perMinute, windowMs: 60_000, now });
  const byService = createRateLimiter({ limit: perMinute, windowMs: 60_000, now });
  /** the last time a service was told it is being rate-limited (once a minute is enough) */
  const toldLimited = new Map<string, number>();
  const iso = () => new Date(now()).toISOString();

  function record(service: string, sender: Sender | null, bodySha: string | null, status: number, fields: Omit<NewDelivery, 'service' | 'receivedAt' | 'forge' | 'event' | 'deliveryId' | 'bodySha256' | 'status'>) {
    const d = deps.hooks.record({
      service,
      receivedAt: iso(),
      forge: sender?.forge ?? null,
      event: sender?.event || null,
      deliveryId: sender?.deliveryId ?? null,
      bodySha256: bodySha,
      status,
      ...fields,
    });
    const eventName = fields.action === 'refused' ? 'hook_refused' : 'hook_received';
    deps.onEvent(service, eventName, { delivery: d.id, forge: d.forge, hookEvent: d.event, status, code: d.code, action: d.action, detail: d.detail, deploymentId: d.deploymentId });
    return d;
  }

  async function receive(req: RouterRequest, requestId: string, service: string): Promise<void> {
    const declared = req.contentLength === undefined ? 0 : Number(req.contentLength);
    const refuse = (err: CellhostError, sender: Sender | null, bodySha: string | null) => {
      record(service, sender, bodySha, err.status, { code: err.code, action: 'refused', detail: err.message, ref: null, commit: null, deploymentId: null });
      answer(req, err.status, refusal(err), requestId);
    };
    const sender = identifySender((name) => {
      const i = req.names.indexOf(name);
      return i >= 0 ? req.rawHeaders[i + 1] : undefined;
    });
    if (declared > MAX_HOOK_BODY) return refuse(new CellhostError('ERR_BODY_TOO_LARGE', `a webhook delivery is at most ${MAX_HOOK_BODY} bytes (1 MB); this one declares ${declared}`), sender, null);
    const body = await readLimited(req, MAX_HOOK_BODY);
    if (body === null) return refuse(new CellhostError('ERR_BODY_TOO_LARGE', `a webhook delivery is at most ${MAX_HOOK_BODY} bytes (1 MB)`), sender, null);
    const bodySha = crypto.createHash('sha256').update(body).digest('hex');
    if (!sender?.proof) {
      return refuse(
        new CellhostError(
          'ERR_HOOK_UNSIGNED',
          sender?.forge === 'github'
            ? 'the delivery has no X-Hub-Signature-256: give the webhook the secret from cellhost hooks ' + service
            : sender?.forge === 'gitlab'
              ? 'the delivery has no X-Gitlab-Token: give the webhook the secret from cellhost hooks ' + service
              : sender
                ? `the delivery has no ${sender.forge === 'generic' ? 'X-Cellhost-Signature: sha256=<hex>' : `X-${sender.forge === 'forgejo' ? 'Forgejo' : 'Gitea'}-Signature`} header`
                : 'the delivery carries no signature of a forge cellhost knows (GitHub X-Hub-Signature-256, Gitea X-Gitea-Signature, Forgejo X-Forgejo-Signature, GitLab X-Gitlab-Token, or X-Cellhost-Signature)',
        ),
        sender,
        bodySha,
      );
    }
    const settings = deps.hooks.ensure(service, iso());
    if (!verifySender(sender, body, settings.secret)) {
      const what = sender.proof.kind === 'token' ? 'token' : 'signature';
      return refuse(new CellhostError('ERR_HOOK_SIGNATURE', `the ${sender.proof.header} ${what} does not match the webhook secret of ${service}`), sender, bodySha);
    }
    if (deps.hooks.seen(service, sender.deliveryId, bodySha)) {
      return refuse(new CellhostError('ERR_HOOK_REPLAYED', `this delivery${sender.deliveryId ? ` (${sender.deliveryId})` : ''} was received before: a replay is not acted on again`), sender, bodySha);
    }
    let outcome: Outcome;
    try {
      const type = req.names.indexOf('content-type');
      const event = parseEvent(sender.forge, sender.event, readBody(body, type >= 0 ? req.rawHeaders[type + 1] : undefined));
      outcome = await actOnEvent({ services: deps.services, branches: deps.branches }, service, sender.forge, event, settings);
    } catch (err) {
      if (!isCellhostError(err)) {
        deps.log.error('hook.failed', { service, error: describeError(err) });
        return refuse(new CellhostError('ERR_INTERNAL', 'the delivery could not be acted on'), sender, bodySha);
      }
      return refuse(err, sender, bodySha);
    }
    const d = record(service, sender, bodySha, outcome.status, { code: null, action: outcome.action, detail: outcome.detail, ref: outcome.ref, commit: outcome.commit, deploymentId: outcome.deploymentId });
    answer(req, outcome.status, { delivery: { id: d.id, action: d.action, detail: d.detail, deploymentId: d.deploymentId } }, requestId);
  }

  return {
    handle(req, requestId) {
      const url = req.url;
      if (!url.startsWith(PREFIX)) return false;
      const name = url.slice(PREFIX.length).split(/[?#]/, 1)[0]!;
      const fail = (code: ErrorCode, message: string, extra: string[] = []) => answer(req, new CellhostError(code, message).status, { error: { code, message } }, requestId, extra);
      if (req.method !== 'POST') {
        fail('ERR_NOT_FOUND', 'webhooks are delivered with POST /hooks/<service>');
        return true;
      }
      const source = bySource.hit(sourceKey(req.socket.remoteAddress ?? 'unknown'));
      if (!source.ok) {
        fail('ERR_HOOK_RATE_LIMITED', `more than ${perMinute} webhook deliveries a minute from this address`, ['retry-after', String(Math.ceil(source.retryAfterMs / 1000))]);
        return true;
      }
      let exists = serviceNameSchema.safeParse(name).success;
      if (exists) {
        try {
          deps.services.get(name);
        } catch {
          exists = false;
        }
      }
      if (!exists) {
        fail('ERR_SERVICE_NOT_FOUND', `no service named "${name}" takes webhooks here`);
        return true;
      }
      const forService = byService.hit(name);
      if (!forService.ok) {
        if ((toldLimited.get(name) ?? 0) < now() - 60_000) {
          toldLimited.set(name, now());
          deps.onEvent(name, 'hook_rate_limited', { perMinute });
        }
        fail('ERR_HOOK_RATE_LIMITED', `more than ${perMinute} webhook deliveries a minute for ${name}`, ['retry-after', String(Math.ceil(forService.retryAfterMs / 1000))]);
        return true;
      }
      receive(req, requestId, name).catch((err: unknown) => {
        deps.log.error('hook.failed', { service: name, error: describeError(err) });
        answer(req, 500, refusal(new CellhostError('ERR_INTERNAL', 'the delivery could not be read')), requestId);
      });
      return true;
    },
  };
}
