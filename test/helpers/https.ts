// Clients for the HTTPS listener: curl (as a user would, with --resolve and a CA file), and
// node's tls/https for what curl cannot show (the certificate served, ALPN, hostile SNI).
import { execFile } from 'node:child_process';
import https from 'node:https';
import tls from 'node:tls';

export interface CurlResult {
  status: number;
  /** 1.1 or 2 */
  httpVersion: string;
  headers: string;
  body: string;
  /** curl's own exit code: 60 = certificate not verified */
  exitCode: number;
  stderr: string;
}

/** `curl --resolve NAME:PORT:127.0.0.1 --cacert CA https://NAME:PORT/PATH`, over HTTP/2 or HTTP/1.1 */
export function curlHttps(name: string, port: number, path: string, opts: { cacert: string; http: '1.1' | '2'; args?: string[] }): Promise<CurlResult> {
  const args = [
    '-sS',
    '--max-time',
    '15',
    '--cacert',
    opts.cacert,
    '--resolve',
    `${name}:${port}:127.0.0.1`,
    opts.http === '2' ? '--http2' : '--http1.1',
    '-D',
    '-',
    '-w',
    '\n%{http_code} %{http_version}',
    ...(opts.args ?? []),
    `https://${name}:${port}${path}`,
  ];
  return new Promise((resolve) => {
    execFile('curl', args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const exitCode = err ? ((err as { code?: number }).code ?? 1) : 0;
      const tail = stdout.lastIndexOf('\n');
      const [code, version] = stdout.slice(tail + 1).split(' ');
      const rest = stdout.slice(0, tail);
      const split = rest.indexOf('\r\n\r\n');
      resolve({ status: Number(code), httpVersion: version ?? '', headers: split >= 0 ? rest.slice(0, split) : '', body: split >= 0 ? rest.slice(split + 4) : rest, exitCode, stderr });
    });
  });
}

/** one TLS handshake: the certificate served for `servername`, verified against `ca` */
export function handshake(port: number, servername: string | undefined, opts: { ca?: string; alpn?: string[] } = {}): Promise<{ ok: true; serial: string; validTo: string; alpn: string | false; authorized: boolean } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: opts.ca, rejectUnauthorized: false, ALPNProtocols: opts.alpn ?? ['http/1.1'] }, () => {
      const cert = socket.getPeerCertificate();
      resolve({ ok: true, serial: cert.serialNumber, validTo: cert.valid_to, alpn: socket.alpnProtocol ?? false, authorized: socket.authorized });
      socket.end();
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')));
    socket.on('error', (err) => resolve({ ok: false, error: err.message }));
  });
}

/** GET over HTTPS/1.1 on a fresh connection, verified against `ca` */
export function httpsGet(port: number, host: string, path: string, ca: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined>; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, servername: host, path, ca, agent: false, headers: { host, ...headers } }, (res) => {
      const serial = (res.socket as tls.TLSSocket).getPeerCertificate().serialNumber;
      let body = '';
      res.on('data', (b) => (body += b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, serial }));
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * A TLS 1.2/1.3 ClientHello record carrying `sni` as raw bytes, whatever their length or
 * encoding (node's and OpenSSL's clients refuse to send hostile names).
 */
export function clientHello(sni: Buffer | null): Buffer {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const u24 = (n: number) => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
  const ext = (type: number, body: Buffer) => Buffer.concat([u16(type), u16(body.length), body]);
  const extensions: Buffer[] = [];
  if (sni) {
    const entry = Buffer.concat([Buffer.from([0]), u16(sni.length), sni]);
    extensions.push(ext(0, Buffer.concat([u16(entry.length), entry])));
  }
  const alpn = Buffer.concat([Buffer.from([8]), Buffer.from('http/1.1')]);
  extensions.push(ext(16, Buffer.concat([u16(alpn.length), alpn])));
  // supported groups (P-256, X25519) and signature algorithms (ECDSA-SHA256, RSA-PSS-SHA256)
  extensions.push(ext(10, Buffer.concat([u16(4), u16(23), u16(29)])));
  extensions.push(ext(13, Buffer.concat([u16(4), u16(0x0403), u16(0x0804)])));
  const exts = Buffer.concat(extensions);
  const ciphers = Buffer.concat([u16(0xc02b), u16(0xc02f), u16(0x009c)]);
  const body = Buffer.concat([u16(0x0303), Buffer.alloc(32, 7), Buffer.from([0]), u16(ciphers.length), ciphers, Buffer.from([1, 0]), u16(exts.length), exts]);
  const handshakeMsg = Buffer.concat([Buffer.from([1]), u24(body.length), body]);
  return Buffer.concat([Buffer.from([22, 3, 1]), u16(handshakeMsg.length), handshakeMsg]);
}
