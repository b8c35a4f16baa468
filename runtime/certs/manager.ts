// Keeps a certificate served for every name the platform answers on over HTTPS: which names
// need one (the services' platform names or the domain's wildcard, and their custom domains),
// ordering them one at a time (DNS first, so a CA never validates a name that points
// elsewhere), renewing them ahead of expiry (or when the CA's renewal information says), and
// backing off after failures. State lives in the certificates table, so a restart serves what
// was issued and resumes the schedule.
import tls from 'node:tls';
import type { Clock } from '../core/clock.ts';
import { isPublicDomain } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { CertTable } from '../router/tls-certs.ts';
import type { CertificateRecord, CertificateStatus, CertificateStore } from '../store/certificates.ts';
import type { Acme, ChallengeBoard, ChallengeType } from './acme.ts';
import type { DnsChecker } from './dns-check.ts';
import { dnsRecheckDelay, registeredDomain, renewalAt, retryDelay, WEEK, WEEKLY_LIMIT } from './policy.ts';
import { DEFAULT_RECHECK_MS, pickInWindow, type RenewalInfo, type RenewalWindow } from './renewal-info.ts';
import { loadUserCertificate, watchFiles, type UserCertificate } from './user-cert.ts';

export interface CertManagerDeps {
  store: CertificateStore;
  /** the services and their custom domains */
  services(): { name: string; domains: string[] }[];
  table: CertTable;
  board: ChallengeBoard;
  /** null: HTTPS is off, nothing is ordered */
  acme: Acme | null;
  dns: DnsChecker;
  /** the platform's base domain */
  domain: string;
  /** DNS-01 is possible: the platform names share one wildcard certificate */
  wildcard: boolean;
  challenges: ('http-01' | 'tls-alpn-01')[];
  directory: string;
  userCert: { cert: string; key: string } | null;
  clock: Clock;
  log: Logger;
  onEvent(service: string | null, event: string, fields: Record<string, unknown>): void;
}

export interface CertificateView {
  domain: string;
  /** none: no certificate is wanted (HTTPS off, or a name no public CA issues) */
  status: CertificateStatus | 'none';
  /** the certificate that answers: the name's own, a wildcard, or the user's */
  servedBy: { identifier: string; source: 'acme' | 'user' } | null;
  issuedAt: string | null;
  expiresAt: string | null;
  challenge: string | null;
  error: string | null;
  nextAttemptAt: string | null;
  dns: { ok: boolean; message: string; found: string[]; checkedAt: string } | null;
  message: string | null;
}

export interface CertManager {
  start(): void;
  /** the services or their domains changed: order what is new, drop what is gone */
  sync(): void;
  /** check a name's DNS now (a user says it is fixed); a CA failure's backoff still holds */
  checkNow(name: string): void;
  view(name: string): CertificateView;
  /** read CELLHOST_TLS_CERT / CELLHOST_TLS_KEY again; false when they did not load */
  reloadUserCertificate(): boolean;
  hasCertificate(host: string): boolean;
  challengeAnswer(host: string, token: string): string | null;
  challengeContextFor(servername: string): tls.SecureContext | null;
  /** Prometheus text */
  metrics(): string;
  close(): Promise<void>;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** a certificate renewed because the CA's window said so is not renewed that way again within this time */
const EARLY_RENEWAL_GAP_MS = 3_600_000;

export function createCertManager(deps: CertManagerDeps): CertManager {
  const { store, table, log } = deps;
  const now = () => deps.clock.now();
  /** name → the service it serves (null: the platform wildcard) */
  let wanted = new Map<string, string | null>();
  let user: UserCertificate | null = null;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let closed = false;
  let unwatch: (() => void) | null = null;
  const failuresTotal = new Map<string, number>();
  /** name → the moment picked in the CA's suggested window (picked again only when the window moves) */
  const picks = new Map<string, RenewalWindow & { at: number }>();
  /** name → when a renewal the CA's window asked for last completed */
  const renewedEarlyAt = new Map<string, number>();
  const isLetsEncrypt = /(^|\.)api\.letsencrypt\.org\//.test(deps.directory.replace(/^https?:\/\//, ''));

  const coveredByUser = (name: string) => deps.table.match(name)?.source === 'user';

  /** every name the platform answers on that a public CA can issue for → its service */
  function answeredNames(): Map<string, string | null> {
    const out = new Map<string, string | null>();
    const platform = isPublicDomain(deps.domain);
    if (platform && deps.wildcard) out.set(`*.${deps.domain}`, null);
    for (const s of deps.services()) {
      if (platform && !deps.wildcard) out.set(`${s.name}.${deps.domain}`, s.name);
      for (const d of s.domains) if (isPublicDomain(d)) out.set(d, s.name);
    }
    return out;
  }

  function sync(): void {
    // with HTTPS off nothing is ordered, and nothing stored is thrown away either
    if (closed || !deps.acme) return;
    const answered = answeredNames();
    // the user's certificate covers some: those are not ordered (and not renewed) while it does
    wanted = new Map([...answered].filter(([name]) => !coveredByUser(name.startsWith('*.') ? `x${name.slice(1)}` : name)));
    const t = now();
    const rows = new Map(store.list().map((r) => [r.name, r]));
    for (const [name, service] of wanted) {
      const row = rows.get(name);
      if (!row) {
        store.saveState({ name, service, status: 'pending_dns', certPem: null, notBefore: null, notAfter: null, challenge: null, error: null, failures: 0, lastAttemptAt: null, nextAttemptAt: t, dns: null, updatedAt: t });
      } else if (row.service !== service) {
        store.saveState({ ...row, service, updatedAt: t });
      }
    }
    // names no longer answered on (domain removed, service deleted): their certificates go
    for (const name of rows.keys()) {
      if (answered.has(name)) continue;
      store.remove(name);
      table.remove('acme', name);
    }
    kick();
  }

  function kick(): void {
    if (closed || running) return;
    if (timer) clearTimeout(timer);
    const rows = store.list().filter((r) => wanted.has(r.name) && r.nextAttemptAt !== null);
    if (!rows.length) return;
    const next = Math.min(...rows.map((r) => r.nextAttemptAt!));
    // at most 12 hours (timers cannot wait a renewal's months): a clock change is caught too
    timer = setTimeout(run, Math.min(Math.max(0, next - now()), 12 * 3_600_000));
    timer.unref();
  }

  function run(): void {
    timer = null;
    if (closed || running) return;
    running = (async () => {
      // one order at a time: the CA sees a steady trickle, and a restart finds one name mid-way
      for (;;) {
        if (closed) return;
        const t = now();
        const due = store
          .list()
          .filter((r) => wanted.has(r.name) && r.nextAttemptAt !== null && r.nextAttemptAt <= t)
          .sort((a, b) => a.nextAttemptAt! - b.nextAttemptAt!)[0];
        if (!due) return;
        await attempt(due).catch((err: Error) => log.error('certs.attempt_crashed', { name: due.name, error: err.stack ?? err.message }));
      }
    })().finally(() => {
      running = null;
      kick();
    });
  }

  function event(r: CertificateRecord, name: string, fields: Record<string, unknown>): void {
    deps.onEvent(r.service, name, { domain: r.name, ...fields });
  }

  /**
   * Whether an issued certificate is to be renewed now, else when to look again. A CA that offers
   * renewal information (ARI) is asked first: a moment picked at random in its suggested window,
   * if earlier than the certificate's dates say, is when to renew, and it is asked again when it
   * says (Retry-After). Otherwise renewal starts 30 days before expiry.
   */
  async function renewalDue(r: CertificateRecord): Promise<{ now: true; info: RenewalInfo | null } | { now: false; at: number }> {
    const t = now();
    const byDates = renewalAt(r.notBefore ?? t, r.notAfter ?? t);
    if (byDates <= t) return { now: true, info: null };
    let info: RenewalInfo | null;
    try {
      info = await deps.acme!.renewalInfo(r.certPem!);
    } catch (err) {
      // not a failure of the certificate: its dates still hold, and the CA is asked again later
      log.warn('certs.renewal_info_failed', { name: r.name, error: describeAcmeError(err, deps.directory) });
      return { now: false, at: Math.min(byDates, t + DEFAULT_RECHECK_MS) };
    }
    if (!info) return { now: false, at: byDates };
    const { window } = info;
    let pick = picks.get(r.name);
    if (!pick || pick.start !== window.start || pick.end !== window.end) {
      pick = { ...window, at: pickInWindow(window) };
      picks.set(r.name, pick);
    }
    if (pick.at > t) return { now: false, at: Math.min(byDates, pick.at, t + info.recheckMs) };
    // a CA whose window stays in the past would otherwise have each new certificate replaced at once
    const last = renewedEarlyAt.get(r.name);
    if (last !== undefined && t - last < EARLY_RENEWAL_GAP_MS) {
      log.warn('certs.renewal_window_again', { name: r.name, window: { start: iso(window.start), end: iso(window.end) }, renewedAt: iso(last) });
      return { now: false, at: Math.min(byDates, last + EARLY_RENEWAL_GAP_MS) };
    }
    return { now: true, info };
  }

  async function attempt(r: CertificateRecord): Promise<void> {
    const t = now();
    const renewal = r.certPem !== null;
    const save = (changes: Partial<CertificateRecord>) => {
      if (closed || !wanted.has(r.name)) return null;
      const next = { ...r, ...changes, updatedAt: now() };
      store.saveState(next);
      return next;
    };

    // an issued certificate comes due to be looked at: renewed only when it is time
    let early: RenewalInfo | null = null;
    if (renewal) {
      const due = await renewalDue(r);
      if (!due.now) {
        save({ nextAttemptAt: due.at });
        return;
      }
      early = due.info;
    }

    let dns = r.dns;
    if (!r.name.startsWith('*.')) {
      // a CNAME may point at the service's platform name; platform names themselves only need to resolve
      const target = r.service && isPublicDomain(deps.domain) ? `${r.service}.${deps.domain}` : null;
      const check = await deps.dns.check(r.name, target, t);
      if (!check.ok) {
        const misses = (r.dns && !r.dns.ok ? (r.dns.misses ?? 1) : 0) + 1;
        save({ status: renewal ? 'issued' : 'pending_dns', dns: { ...check, misses }, error: renewal ? `renewal waits for DNS: ${check.message}` : null, nextAttemptAt: now() + dnsRecheckDelay(misses) });
        if (misses === 1) event(r, 'certificate_pending_dns', { message: check.message });
        return;
      }
      dns = check;
    }

    if (!renewal) {
      const reg = registeredDomain(r.name);
      const { count, oldest } = store.issuedSince(reg, t - WEEK);
      if (isLetsEncrypt && count >= WEEKLY_LIMIT && oldest !== null) {
        const at = oldest + WEEK;
        const error = `${count} new certificates were issued for ${reg} in the last 7 days and Let's Encrypt allows ${WEEKLY_LIMIT}: the next can be ordered at ${iso(at)}`;
        save({ status: 'failed', dns, error, nextAttemptAt: at });
        event(r, 'certificate_failed', { reason: error, nextAttemptAt: iso(at) });
        return;
      }
      if (count >= WEEKLY_LIMIT - 10) log.warn('certs.weekly_limit_near', { registeredDomain: reg, issued: count, limit: WEEKLY_LIMIT });
    }

    // the wildcard can only be validated by DNS; single names alternate between the allowed
    // challenges after failures, as one of them may be blocked (port 80 closed, a proxy in front)
    const challenge: ChallengeType = r.name.startsWith('*.') ? 'dns-01' : deps.challenges[r.failures % deps.challenges.length]!;
    const started = save({ status: renewal ? 'issued' : 'validating', dns, challenge, lastAttemptAt: t });
    if (!started) return;
    r = started;
    try {
      const issued = await deps.acme!.order(r.name, challenge, r.certPem ?? undefined);
      if (closed) return;
      store.recordOrder({ name: r.name, registeredDomain: registeredDomain(r.name), directory: deps.directory, renewal, outcome: 'issued', at: now() });
      if (!wanted.has(r.name)) return;
      const context = tls.createSecureContext({ key: issued.keyPem, cert: issued.certPem });
      // a certificate already due for renewal (a CA's or a clock's mistake) must not start a
      // loop; any other is looked at again at once, for the CA's renewal information about it
      let renewAt = now();
      if (renewalAt(issued.notBefore, issued.notAfter) <= now()) {
        log.warn('certs.issued_due', { name: r.name, notAfter: iso(issued.notAfter) });
        renewAt = now() + 3_600_000;
      }
      if (early) renewedEarlyAt.set(r.name, now());
      picks.delete(r.name);
      const next: CertificateRecord = {
        ...r,
        status: 'issued',
        certPem: issued.certPem,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        error: null,
        failures: 0,
        nextAttemptAt: renewAt,
        updatedAt: now(),
      };
      store.saveIssued(next, issued.keyPem);
      // connections already open keep the old certificate; new handshakes get this one
      table.put('acme', r.name, context);
      // renewed ahead of its dates because the CA's window said so: the user is told, with the CA's reason
      const asked = early ? { suggestedByCa: true, explanationUrl: early.explanationUrl } : {};
      log.info(renewal ? 'certs.renewed' : 'certs.issued', { name: r.name, challenge, expiresAt: iso(issued.notAfter), ...asked });
      event(next, renewal ? 'certificate_renewed' : 'certificate_issued', { challenge, expiresAt: iso(issued.notAfter), ...asked });
    } catch (err) {
      if (closed) return;
      const reason = describeAcmeError(err, deps.directory);
      const failures = r.failures + 1;
      const nextAttemptAt = now() + retryDelay(failures);
      failuresTotal.set(r.name, (failuresTotal.get(r.name) ?? 0) + 1);
      store.recordOrder({ name: r.name, registeredDomain: registeredDomain(r.name), directory: deps.directory, renewal, outcome: 'failed', at: now() });
      save({ status: renewal ? 'issued' : 'failed', error: reason, failures, nextAttemptAt });
      log.warn('certs.failed', { name: r.name, challenge, renewal, failures, reason, nextAttemptAt: iso(nextAttemptAt) });
      event(r, 'certificate_failed', { reason, renewal, challenge, failures, nextAttemptAt: iso(nextAttemptAt) });
    }
  }

  function loadStored(): void {
    for (const r of store.list()) {
      if (!r.certPem) continue;
      try {
        const key = store.key(r.name);
        if (key) table.put('acme', r.name, tls.createSecureContext({ key, cert: r.certPem }));
      } catch (err) {
        log.error('certs.load_failed', { name: r.name, error: (err as Error).message });
      }
      // an order cut short by the last stop is taken up again now
      if (r.status === 'validating') store.saveState({ ...r, nextAttemptAt: now() });
    }
  }

  function reloadUserCertificate(): boolean {
    if (!deps.userCert) return false;
    try {
      const next = loadUserCertificate(deps.userCert.cert, deps.userCert.key);
      table.clear('user');
      for (const n of next.names) table.put('user', n, next.context);
      const changed = user !== null;
      user = next;
      log.info(changed ? 'certs.user_reloaded' : 'certs.user_loaded', { names: next.names, expiresAt: iso(next.notAfter) });
      sync();
      return true;
    } catch (err) {
      log.error('certs.user_load_failed', { cert: deps.userCert.cert, key: deps.userCert.key, error: (err as Error).message, keeping: user ? 'the certificate loaded before' : 'none' });
      return false;
    }
  }

  function view(name: string): CertificateView {
    const m = table.match(name);
    const servedBy = m ? { identifier: m.identifier, source: m.source } : null;
    const base = { domain: name, servedBy, issuedAt: null, expiresAt: null, challenge: null, error: null, nextAttemptAt: null, dns: null, message: null };
    if (m?.source === 'user' && user) return { ...base, status: 'issued', expiresAt: iso(user.notAfter), message: 'the certificate given in CELLHOST_TLS_CERT' };
    const own = store.get(name);
    const r = own ?? (m ? store.get(m.identifier) : undefined) ?? (wanted.has(`*.${deps.domain}`) && name.endsWith(`.${deps.domain}`) ? store.get(`*.${deps.domain}`) : undefined);
    if (!r) {
      const why = !deps.acme ? 'HTTPS is off (set CELLHOST_HTTPS_ADDR)' : !isPublicDomain(name) ? `no public CA issues certificates for ${name}` : 'not ordered yet';
      return { ...base, status: 'none', message: why };
    }
    return {
      ...base,
      status: r.status,
      issuedAt: iso(r.notBefore),
      expiresAt: iso(r.notAfter),
      challenge: r.challenge,
      error: r.error,
      nextAttemptAt: iso(r.nextAttemptAt),
      dns: r.dns ? { ok: r.dns.ok, message: r.dns.message, found: r.dns.found, checkedAt: iso(r.dns.checkedAt)! } : null,
      message: r !== own ? `served by the wildcard certificate ${r.name}` : null,
    };
  }

  return {
    start() {
      loadStored();
      if (deps.userCert) {
        reloadUserCertificate();
        unwatch = watchFiles([deps.userCert.cert, deps.userCert.key], () => reloadUserCertificate());
      }
      sync();
    },
    sync,
    checkNow(name) {
      const r = store.get(name);
      if (!r || !wanted.has(name)) return;
      // a DNS fix is looked at at once; a CA failure keeps at least a minute between attempts
      const earliest = r.status === 'failed' && r.lastAttemptAt !== null ? r.lastAttemptAt + retryDelay(1) : now();
      if (r.status !== 'pending_dns' && r.status !== 'failed') return;
      store.saveState({ ...r, nextAttemptAt: Math.max(now(), earliest), updatedAt: now() });
      kick();
    },
    view,
    reloadUserCertificate,
    hasCertificate: (host) => table.covers(host),
    challengeAnswer: (host, token) => deps.board.http01.get(host)?.get(token) ?? null,
    challengeContextFor: (servername) => deps.board.alpn.get(servername.toLowerCase()) ?? null,
    metrics() {
      const lines = [
        '# HELP cellhost_certificate_failures_total Certificate orders and renewals that failed since the platform started',
        '# TYPE cellhost_certificate_failures_total counter',
        ...[...failuresTotal].map(([name, n]) => `cellhost_certificate_failures_total{domain="${name}"} ${n}`),
        '# HELP cellhost_certificate_expiry_seconds When each certificate served expires (Unix time)',
        '# TYPE cellhost_certificate_expiry_seconds gauge',
      ];
      const states: Record<string, number> = { pending_dns: 0, validating: 0, issued: 0, failed: 0 };
      for (const r of store.list()) {
        states[r.status] = (states[r.status] ?? 0) + 1;
        if (r.notAfter !== null) lines.push(`cellhost_certificate_expiry_seconds{domain="${r.name}",source="acme"} ${Math.round(r.notAfter / 1000)}`);
      }
      if (user) for (const n of user.names) lines.push(`cellhost_certificate_expiry_seconds{domain="${n}",source="user"} ${Math.round(user.notAfter / 1000)}`);
      lines.push('# HELP cellhost_certificates Names by certificate state', '# TYPE cellhost_certificates gauge');
      for (const [state, n] of Object.entries(states)) lines.push(`cellhost_certificates{state="${state}"} ${n}`);
      return lines.join('\n') + '\n';
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      unwatch?.();
      // an order under way is abandoned: its state says validating, and the next start takes it up
      if (running) await Promise.race([running, new Promise((r) => setTimeout(r, 2000).unref())]);
    },
  };
}

/** the CA's reason in words a user can act on */
export function describeAcmeError(err: unknown, directory: string): string {
  const e = err as { code?: string; message?: string };
  if (e.code && /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|CERT_|UNABLE_TO|SELF_SIGNED|DEPTH_ZERO)/.test(e.code)) {
    return `the CA at ${directory} could not be reached (${e.code})`;
  }
  return (e.message ?? String(err)).slice(0, 1000);
}
