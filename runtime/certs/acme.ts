// One certificate order with any ACME CA, through the maintained `acme-client` package: the
// account (created once, its key stored encrypted), the order, the challenge answered by this
// process (HTTP-01 from the router, TLS-ALPN-01 from the TLS listener, DNS-01 through the hook),
// the CSR for a fresh P-256 key, and the chain.
import fs from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import acme from 'acme-client';
import type { Logger } from '../core/log.ts';
import type { CertificateStore } from '../store/certificates.ts';
import type { DnsChecker } from './dns-check.ts';
import type { DnsHook } from './dns-hook.ts';
import { certId, readRenewalInfo, type RenewalInfo } from './renewal-info.ts';

export type ChallengeType = 'http-01' | 'tls-alpn-01' | 'dns-01';

export interface Issued {
  certPem: string;
  keyPem: string;
  notBefore: number;
  notAfter: number;
}

/** what is published while a challenge is under way; the listeners read it */
export interface ChallengeBoard {
  /** host → token → key authorization (HTTP-01) */
  http01: Map<string, Map<string, string>>;
  /** host → acme-tls/1 certificate (TLS-ALPN-01) */
  alpn: Map<string, tls.SecureContext>;
}

export interface AcmeOptions {
  directory: string;
  email?: string;
  /** extra CA certificates to trust for the CA's own HTTPS (a test CA) */
  caFile?: string;
  store: CertificateStore;
  board: ChallengeBoard;
  dnsHook: DnsHook | null;
  dns: DnsChecker;
  now(): number;
  log: Logger;
  /** how long DNS-01 waits for its TXT record to be visible before asking the CA anyway */
  txtWaitMs?: number;
}

export interface Acme {
  /** `replacing`: the certificate this one renews, named to a CA that offers ARI (RFC 9773's `replaces`) */
  order(name: string, challenge: ChallengeType, replacing?: string): Promise<Issued>;
  /** when the CA suggests renewing this certificate; null when the CA offers no renewal information */
  renewalInfo(certPem: string): Promise<RenewalInfo | null>;
}

export function createAcme(opts: AcmeOptions): Acme {
  if (opts.caFile) {
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: [...tls.rootCertificates, fs.readFileSync(opts.caFile, 'utf8')], keepAlive: true });
  }
  // retries are the scheduler's, with its backoff: none inside a request (they would hold the
  // queue for a minute and hammer a CA that is down)
  (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
  keepNetworkErrors();
  let client: acme.Client | null = null;
  /** the directory's renewalInfo URL, '' when it has none; read once */
  let renewalInfoUrl: Promise<string> | null = null;

  function renewalInfoBase(): Promise<string> {
    renewalInfoUrl ??= acme.axios.get(opts.directory).then(
      (res) => {
        const url = (res.data as { renewalInfo?: unknown } | null)?.renewalInfo;
        return typeof url === 'string' ? url.replace(/\/+$/, '') : '';
      },
      (err: unknown) => {
        renewalInfoUrl = null; // asked again next time
        throw err;
      },
    );
    return renewalInfoUrl;
  }

  /** the order, naming the certificate it replaces when the CA offers ARI */
  async function createOrder(c: acme.Client, name: string, replacing: string | undefined): Promise<acme.Order> {
    const identifiers = [{ type: 'dns', value: name }];
    const replaces = replacing && (await renewalInfoBase().catch(() => '')) ? certId(replacing) : null;
    if (!replaces) return c.createOrder({ identifiers });
    try {
      return await c.createOrder({ identifiers, replaces } as Parameters<acme.Client['createOrder']>[0]);
    } catch (err) {
      if (err instanceof CaUnreachable) throw err;
      // a CA that will not take it (already replaced, or an identifier it does not know) still
      // gets a plain order: `replaces` only spares the renewal a rate limit
      opts.log.warn('acme.replaces_refused', { name, replaces, error: (err as Error).message });
      return c.createOrder({ identifiers });
    }
  }

  async function account(): Promise<acme.Client> {
    if (client) return client;
    const stored = opts.store.account(opts.directory);
    const keyPem = stored?.keyPem ?? (await acme.crypto.createPrivateEcdsaKey()).toString();
    const c = new acme.Client({ directoryUrl: opts.directory, accountKey: keyPem, backoffAttempts: 12, backoffMin: 500, backoffMax: 5000 });
    // for a known key this returns the existing account (and recreates it on a CA that forgot it)
    await c.createAccount({ termsOfServiceAgreed: true, ...(opts.email ? { contact: [`mailto:${opts.email}`] } : {}) });
    const url = c.getAccountUrl();
    if (!stored || stored.url !== url) {
      opts.store.saveAccount(opts.directory, keyPem, url, opts.email ?? null, opts.now());
      opts.log.info('acme.account', { directory: opts.directory, url, created: !stored });
    }
    client = c;
    return c;
  }

  /** publish the answer; returns how to take it down */
  async function present(type: ChallengeType, authz: acme.Authorization, keyAuth: string): Promise<() => Promise<void>> {
    const host = authz.identifier.value;
    if (type === 'http-01') {
      const token = keyAuth.slice(0, keyAuth.indexOf('.'));
      const tokens = opts.board.http01.get(host) ?? new Map<string, string>();
      tokens.set(token, keyAuth);
      opts.board.http01.set(host, tokens);
      return async () => {
        tokens.delete(token);
        if (!tokens.size && opts.board.http01.get(host) === tokens) opts.board.http01.delete(host);
      };
    }
    if (type === 'tls-alpn-01') {
      const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuth);
      const ctx = tls.createSecureContext({ key, cert });
      opts.board.alpn.set(host, ctx);
      return async () => {
        if (opts.board.alpn.get(host) === ctx) opts.board.alpn.delete(host);
      };
    }
    const hook = opts.dnsHook;
    if (!hook) throw new Error('DNS-01 needs CELLHOST_ACME_DNS_HOOK');
    const record = `_acme-challenge.${host}`;
    await hook('set', record, keyAuth);
    // the CA looks the record up itself: give it time to show where we can see it
    const deadline = opts.now() + (opts.txtWaitMs ?? 120_000);
    while (!(await opts.dns.txt(record)).includes(keyAuth) && opts.now() < deadline) await new Promise((r) => setTimeout(r, 1000));
    return () => hook('unset', record, keyAuth);
  }

  return {
    async renewalInfo(certPem) {
      const base = await renewalInfoBase();
      const id = base ? certId(certPem) : null;
      if (!id) return null;
      const res = await acme.axios.get(`${base}/${id}`);
      return readRenewalInfo(res.data, res.headers['retry-after'] as string | undefined, opts.now());
    },

    async order(name, type, replacing) {
      const c = await account();
      const order = await createOrder(c, name, replacing);
      const cleanups: (() => Promise<void>)[] = [];
      try {
        for (const authz of await c.getAuthorizations(order)) {
          // an authorization the CA still holds as valid needs no new challenge
          if (authz.status === 'valid') continue;
          const challenge = authz.challenges.find((ch) => ch.type === type);
          if (!challenge) throw new Error(`the CA offers no ${type} challenge for ${name} (it offers ${authz.challenges.map((ch) => ch.type).join(', ')})`);
          const keyAuth = await c.getChallengeKeyAuthorization(challenge);
          cleanups.push(await present(type, authz, keyAuth));
          await c.completeChallenge(challenge);
          await c.waitForValidStatus(challenge);
        }
        const key = await acme.crypto.createPrivateEcdsaKey();
        const [, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] }, key);
        const finalized = await c.finalizeOrder(order, csr);
        const certPem = await c.getCertificate(finalized);
        const info = acme.crypto.readCertificateInfo(certPem);
        return { certPem, keyPem: key.toString(), notBefore: info.notBefore.getTime(), notAfter: info.notAfter.getTime() };
      } finally {
        for (const cleanup of cleanups) await cleanup().catch((err: Error) => opts.log.warn('acme.cleanup_failed', { name, error: err.message }));
      }
    },
  };
}

class CaUnreachable extends Error {
  constructor(readonly code: string) {
    super(`the CA could not be reached (${code})`);
  }
}

let networkErrorsKept = false;

/**
 * acme-client 5.4's response interceptor reads `response.config` of a request that got no
 * response, so a refused or timed-out connection surfaces as a TypeError. An interceptor run
 * before it turns such an error into one that says what happened (without `config`, acme-client
 * passes it on untouched); answers, error statuses included, go on as they were.
 */
function keepNetworkErrors(): void {
  if (networkErrorsKept) return;
  networkErrorsKept = true;
  const handlers = (acme.axios.interceptors.response as unknown as { handlers: unknown[] }).handlers;
  handlers.unshift({
    fulfilled: (res: unknown) => res,
    rejected: (err: { response?: unknown; code?: string; message?: string }) => Promise.reject(err.response ? err : new CaUnreachable(err.code ?? err.message ?? 'no answer')),
    synchronous: false,
    runWhen: null,
  });
}
