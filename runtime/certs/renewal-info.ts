// ACME Renewal Information (ARI, RFC 9773): a CA that offers it says when each certificate
// should be renewed (its suggested window), which moves renewal earlier when the CA has to
// revoke certificates, and spreads renewals over time. acme-client 5.4 has no ARI, so its two
// small parts are here: the certificate's identifier (read with @peculiar/x509, the parser
// acme-client itself uses), and reading the CA's answer. Pure functions, so that they are tested
// without a CA.
import { AuthorityKeyIdentifierExtension, X509Certificate } from '@peculiar/x509';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** how soon to ask again when the CA names no time (RFC 9773 suggests six hours) */
export const DEFAULT_RECHECK_MS = 6 * HOUR;
/** a Retry-After under a minute or over a day is taken as a minute or a day (the RFC's example bounds) */
const RECHECK_MIN_MS = MINUTE;
const RECHECK_MAX_MS = DAY;

export interface RenewalWindow {
  start: number;
  end: number;
}

export interface RenewalInfo {
  window: RenewalWindow;
  /** when to ask again */
  recheckMs: number;
  /** the CA's page about why the window moved, when it says */
  explanationUrl: string | null;
}

/**
 * The certificate's ARI identifier: base64url of its Authority Key Identifier's keyIdentifier,
 * a dot, and base64url of its serial number's DER content octets. Null when the certificate has
 * no keyIdentifier (no CA that offers ARI issues such certificates).
 */
export function certId(certPem: string): string | null {
  const cert = new X509Certificate(certPem);
  const keyId = cert.getExtension(AuthorityKeyIdentifierExtension)?.keyId;
  if (!keyId) return null;
  let serial = Buffer.from(cert.serialNumber, 'hex');
  // a DER INTEGER is signed: a serial whose first bit is set carries a zero octet before it
  // (which serialNumber leaves out)
  if (serial.length === 0 || serial[0]! & 0x80) serial = Buffer.concat([Buffer.alloc(1), serial]);
  return `${Buffer.from(keyId, 'hex').toString('base64url')}.${serial.toString('base64url')}`;
}

/** the CA's answer to GET renewalInfo/{certId}: its JSON body and its Retry-After header */
export function readRenewalInfo(body: unknown, retryAfter: string | undefined, now: number): RenewalInfo {
  const w = (body as { suggestedWindow?: { start?: unknown; end?: unknown } } | null)?.suggestedWindow;
  const start = typeof w?.start === 'string' ? Date.parse(w.start) : NaN;
  const end = typeof w?.end === 'string' ? Date.parse(w.end) : NaN;
  if (!Number.isFinite(start) || !Number.isFinite(end) || end < start) throw new Error(`the CA's renewal information has no valid suggestedWindow: ${JSON.stringify(body)?.slice(0, 200)}`);
  const explanation = (body as { explanationURL?: unknown }).explanationURL;
  return { window: { start, end }, recheckMs: recheckDelay(retryAfter, now), explanationUrl: typeof explanation === 'string' ? explanation : null };
}

/** Retry-After (seconds or an HTTP date) as a delay within the bounds; the default when absent or unreadable */
export function recheckDelay(retryAfter: string | undefined, now: number): number {
  if (!retryAfter) return DEFAULT_RECHECK_MS;
  const value = retryAfter.trim();
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(ms)) return DEFAULT_RECHECK_MS;
  return Math.min(RECHECK_MAX_MS, Math.max(RECHECK_MIN_MS, ms));
}

/** a uniformly random moment of the window, as RFC 9773 asks, so a CA's clients do not all come at once */
export function pickInWindow(window: RenewalWindow, random: () => number = Math.random): number {
  return window.start + Math.floor(random() * (window.end - window.start));
}
