// What the app is told about a request: the client's headers minus the hop-by-hop ones, and the
// forwarding fields (X-Forwarded-For/-Proto/-Host, X-Real-IP, Forwarded) as the router saw the
// connection. A client's own forwarding fields are dropped, since anyone can write them, unless
// the peer is a proxy the operator trusts (CELLHOST_TRUST_PROXY): then its view is kept and the
// router's appended, as each proxy in a chain does.
import net from 'node:net';
import type { RouterRequest } from './request.ts';

// RFC 9110 §7.6.1 hop-by-hop headers, plus the ones we set ourselves
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);
const SET_HERE = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'forwarded', 'x-request-id']);

/** the peers whose forwarding fields are believed; null when there are none (the usual case) */
export type TrustedProxies = net.BlockList | null;

/** "IP" and "IP/bits" entries (IPv4 or IPv6) → a matcher; an invalid entry throws */
export function parseTrustedProxies(entries: readonly string[]): TrustedProxies {
  if (entries.length === 0) return null;
  const list = new net.BlockList();
  for (const entry of entries) {
    const [ip, bits, extra] = entry.split('/');
    const type = net.isIPv4(ip!) ? 'ipv4' : net.isIPv6(ip!) ? 'ipv6' : null;
    const prefix = bits === undefined ? undefined : Number(bits);
    if (!type || extra !== undefined || (prefix !== undefined && !(/^\d+$/.test(bits!) && prefix <= (type === 'ipv4' ? 32 : 128)))) {
      throw new Error(`"${entry}" is not an IP address or CIDR`);
    }
    if (prefix === undefined) list.addAddress(ip!, type);
    else list.addSubnet(ip!, prefix, type);
  }
  return list;
}

function isTrusted(trusted: net.BlockList, address: string): boolean {
  const type = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : null;
  return type !== null && trusted.check(address, type);
}

/**
 * RFC 9112 §3.2.2: a request line with an absolute-form target (`GET http://host/path`) names
 * its host there, and the Host field is ignored. The request is rewritten to what the app
 * expects, the origin form and a Host of that authority. False: a target that is neither form.
 */
export function takeAbsoluteTarget(req: RouterRequest): boolean {
  const url = req.url;
  if (url.charCodeAt(0) === 47 /* '/' */) return true;
  if (url === '*') return req.method === 'OPTIONS';
  const m = /^https?:\/\/([^/?#@\s]+)([/?][^#\s]*)?$/i.exec(url);
  if (!m) return false;
  req.host = m[1]!;
  const rest = m[2] ?? '/';
  req.url = rest.charCodeAt(0) === 63 /* '?' */ ? '/' + rest : rest;
  return true;
}

/** the request's headers for the app, as [name, value, ...]: hop-by-hop ones out, forwarding ones in */
export function forwardHeaders(req: RouterRequest, requestId: string, trusted: TrustedProxies): string[] {
  const out: string[] = [];
  const raw = req.rawHeaders;
  const names = req.names;
  const connection = req.connection;
  // names the client's Connection header lists are hop-by-hop too (rare: only then a Set)
  const listed = connection && connection.includes(',') ? new Set(connection.toLowerCase().split(',').map((s) => s.trim())) : connection ? connection.trim().toLowerCase() : null;
  for (let i = 0; i < raw.length; i += 2) {
    const key = names[i]!;
    // the router answered any 100-continue itself; the app gets the body straight away
    if (HOP_BY_HOP.has(key) || key === 'expect' || SET_HERE.has(key)) continue;
    if (listed !== null && (typeof listed === 'string' ? listed === key : listed.has(key))) continue;
    if (key === 'host') continue;
    out.push(key, raw[i + 1]!);
  }
  const host = req.host ?? '';
  // the one Host (two are refused), or the absolute-form target's authority (an HTTP/1.0 request
  // may have come with no Host but such a target)
  if (host) out.push('host', host);
  const socket = req.socket;
  let peer = socket.remoteAddress ?? '';
  // a dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d
  if (peer.charCodeAt(0) === 58 /* ':' */ && peer.startsWith('::ffff:') && peer.includes('.')) peer = peer.slice(7);
  // a TLS listener hands the router TLS sockets
  const proto = (socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
  const node = `for=${peer.includes(':') ? `"[${peer}]"` : peer};proto=${proto};host=${quote(host)}`;
  if (trusted === null || !isTrusted(trusted, peer)) {
    out.push('x-forwarded-for', peer, 'x-forwarded-proto', proto, 'x-forwarded-host', host, 'x-real-ip', peer, 'forwarded', node, 'x-request-id', requestId);
    return out;
  }
  const prior = req.forwardedFor;
  const claimedProto = req.forwardedProto?.split(',')[0]!.trim().toLowerCase();
  out.push(
    'x-forwarded-for', prior ? `${prior}, ${peer}` : peer,
    'x-forwarded-proto', claimedProto === 'https' || claimedProto === 'http' ? claimedProto : proto,
    'x-forwarded-host', req.forwardedHost?.split(',')[0]!.trim() || host,
    'x-real-ip', prior ? clientOf(prior, trusted) : peer,
    'forwarded', req.forwarded ? `${req.forwarded}, ${node}` : node,
    'x-request-id', requestId,
  );
  return out;
}

/** the client behind a chain of trusted proxies: the rightmost address in it no trusted proxy has */
function clientOf(forwardedFor: string, trusted: net.BlockList): string {
  const hops = forwardedFor.split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) if (!isTrusted(trusted, hops[i]!)) return hops[i]!;
  return hops[0] ?? '';
}

/** an RFC 9110 quoted-string (a host with a port is not a token: ':' is not a token character) */
function quote(value: string): string {
  return value.includes('"') || value.includes('\\') ? `"${value.replace(/["\\]/g, '\\$&')}"` : `"${value}"`;
}
