// A smart-HTTP git server for tests: `git http-backend` behind a tiny CGI bridge, serving every
// repository under a root (read-only: pushes are not enabled). A path under /stall/ is never
// answered (a clone that hangs). With a token, a path under /private/ asks for it as the Basic
// password (a private repository). Prints "listening" when ready.
// usage: node git-http-backend.mjs <project root> <port> [host] [token]
import { spawn } from 'node:child_process';
import http from 'node:http';

const [root, port, host = '0.0.0.0', token] = process.argv.slice(2);

http
  .createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://git.test');
    if (url.pathname.startsWith('/stall/')) return;
    if (token && url.pathname.startsWith('/private/')) {
      const basic = /^Basic (\S+)$/.exec(req.headers.authorization ?? '');
      const password = basic ? Buffer.from(basic[1], 'base64').toString().split(':').slice(1).join(':') : null;
      if (password !== token) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' });
        res.end();
        return;
      }
    }
    const child = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        GIT_CONFIG_NOSYSTEM: '1',
        HOME: root,
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_ADDR: req.socket.remoteAddress ?? '',
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    req.pipe(child.stdin);
    let head = Buffer.alloc(0);
    let inBody = false;
    child.stdout.on('data', (chunk) => {
      if (inBody) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const crlf = head.indexOf('\r\n\r\n');
      const lf = head.indexOf('\n\n');
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
      if (end < 0) return;
      const sep = end === crlf ? 4 : 2;
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') res.statusCode = Number(value.split(' ')[0]);
        else if (name) res.setHeader(name, value);
      }
      inBody = true;
      const rest = head.subarray(end + sep);
      if (rest.length) res.write(rest);
    });
    child.on('close', () => res.end());
    child.on('error', () => {
      res.statusCode = 500;
      res.end();
    });
  })
  .listen(Number(port), host, () => console.log('listening'));
