// Renewal information (ARI, RFC 9773) in front of Pebble, which has none in Debian 12 (2.4.0).
// An HTTPS server with Pebble's own certificate passes every ACME request through to Pebble
// unchanged, Host included (Pebble names its URLs after it, so the whole exchange comes back here
// and the signed requests' URLs match), adds `renewalInfo` to the directory and answers it as
// the test says. It notes the renewal information asked for and each newOrder's payload.
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { Pebble } from './pebble.ts';

export interface AriAnswer {
  start: Date;
  end: Date;
  /** seconds */
  retryAfter?: number;
  explanationURL?: string;
}

export interface AriFront {
  directory: string;
  /** the certificate identifiers asked about, in order */
  asked: string[];
  /** each newOrder's payload, in order */
  orders: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startAriFront(pebble: Pebble, answer: (certId: string) => AriAnswer): Promise<AriFront> {
  const upstream = new URL(pebble.directory);
  const ca = fs.readFileSync(pebble.caFile, 'utf8');
  const asked: string[] = [];
  const orders: Record<string, unknown>[] = [];
  const server = https.createServer({ cert: ca, key: fs.readFileSync(path.join(pebble.dir, 'pebble-https.key'), 'utf8') }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = req.url ?? '/';
      if (url.startsWith('/renewal-info/')) {
        const id = url.slice('/renewal-info/'.length);
        asked.push(id);
        const a = answer(id);
        res.writeHead(200, { 'content-type': 'application/json', 'retry-after': String(a.retryAfter ?? 21600) });
        res.end(JSON.stringify({ suggestedWindow: { start: a.start.toISOString(), end: a.end.toISOString() }, ...(a.explanationURL ? { explanationURL: a.explanationURL } : {}) }));
        return;
      }
      if (req.method === 'POST' && url === '/order-plz') {
        const jws = JSON.parse(body.toString('utf8')) as { payload: string };
        orders.push(JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')));
      }
      const forward = https.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: url, headers: req.headers, ca, agent: false },
        (up) => {
          if (url === upstream.pathname && req.method === 'GET') {
            const parts: Buffer[] = [];
            up.on('data', (c: Buffer) => parts.push(c));
            up.on('end', () => {
              const dir = JSON.parse(Buffer.concat(parts).toString('utf8'));
              dir.renewalInfo = `https://${req.headers.host}/renewal-info`;
              const text = JSON.stringify(dir);
              res.writeHead(up.statusCode ?? 502, { ...up.headers, 'content-length': Buffer.byteLength(text) });
              res.end(text);
            });
            return;
          }
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      forward.on('error', (err) => {
        res.writeHead(502);
        res.end(String(err));
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    directory: `https://127.0.0.1:${port}${upstream.pathname}`,
    asked,
    orders,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
