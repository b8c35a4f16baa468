// ACME Renewal Information (ARI, RFC 9773): a CA that offers it says when each certificate
// should be renewed (its suggested window), which moves renewal earlier when the CA has to
// revoke certificates, and spreads renewals over time. acme-client 5.4 has no ARI, so its two
// small parts are here: the certificate's identifier, and reading the CA's answer. Pure
// functions, apart from the X.509 parse, so that they are tested without a CA.
import crypto from 'node:crypto';

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
  const cert = new crypto.X509Certificate(certPem);
  const keyId = authorityKeyId(cert.raw);
  if (!keyId) return null;
  let hex = cert.serialNumber.replace(/[^0-9a-f]/gi, '');
  if (hex.length % 2) hex = '0' + hex;
  let serial = Buffer.from(hex, 'hex');
  // a DER INTEGER is signed: a serial whose first bit is set carries a zero octet before it
  if (serial.length === 0 || serial[0]! & 0x80) serial = Buffer.concat([Buffer.alloc(1), serial]);
  return `${keyId.toString('base64url')}.${serial.toString('base64url')}`;
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

/** the keyIdentifier of the Authority Key Identifier extension (2.5.29.35) in a certificate's DER */
function authorityKeyId(der: Buffer): Buffer | null {
  const cert = readTlv(der, 0);
  const tbs = cert && readTlv(der, cert.start);
  if (!tbs) return null;
  // tbsCertificate's fields, up to its [3] extensions
  for (let at = tbs.start; at < tbs.end; ) {
    const field = readTlv(der, at);
    if (!field) return null;
    if (der[at] === 0xa3) return keyIdIn(der, field.start);
    at = field.end;
  }
  return null;
}

const AKI_OID = Buffer.from([0x55, 0x1d, 0x23]);

function keyIdIn(der: Buffer, at: number): Buffer | null {
  const list = readTlv(der, at);
  if (!list) return null;
  for (let e = list.start; e < list.end; ) {
    const ext = readTlv(der, e);
    if (!ext) return null;
    const oid = readTlv(der, ext.start);
    if (oid && der[ext.start] === 0x06 && der.subarray(oid.start, oid.end).equals(AKI_OID)) {
      let next = oid.end;
      if (der[next] === 0x01) next = readTlv(der, next)?.end ?? ext.end; // critical
      const octets = readTlv(der, next);
      const seq = octets && readTlv(der, octets.start);
      const first = seq && seq.start < seq.end ? readTlv(der, seq.start) : null;
      // keyIdentifier is [0] IMPLICIT OCTET STRING
      return first && der[seq!.start] === 0x80 ? Buffer.from(der.subarray(first.start, first.end)) : null;
    }
    e = ext.end;
  }
  return null;
}

/** one DER tag-length-value at `at`: where its content starts and ends; null when it does not fit */
function readTlv(der: Buffer, at: number): { start: number; end: number } | null {
  if (at + 2 > der.length) return null;
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > der.length) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  const end = start + len;
  return end <= der.length ? { start, end } : null;
}
