// What a visitor sees when the platform, not the app, answers: a short HTML page for
// browsers, `{error:{code,message}}` for everything else. Each names the reason.
import http from 'node:http';
import type net from 'node:net';
import type { CellhostError } from '../core/errors.ts';
import type { RouterRequest } from './request.ts';

const TITLES: Record<number, string> = {
  404: 'Not found',
  413: 'Request too large',
  431: 'Request headers too large',
  502: 'Bad gateway',
  503: 'Service unavailable',
  504: 'Gateway timeout',
};

export function wantsHtml(accept: string | undefined): boolean {
  return !!accept && accept.includes('text/html');
}

export function sendError(req: RouterRequest, err: CellhostError, requestId: string): void {
  const res = req.res;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: string[] = ['x-request-id', requestId, 'cache-control', 'no-store', 'x-cellhost-error', err.code];
  if (err.status === 503) headers.push('retry-after', '1');
  const lastLines = Array.isArray(err.details?.lastLines) ? (err.details.lastLines as string[]).slice(-10) : [];
  let body: string;
  if (wantsHtml(req.accept)) {
    headers.push('content-type', 'text/html; charset=utf-8');
    const title = TITLES[err.status] ?? 'Error';
    body =
      `<!doctype html><html><head><meta charset="utf-8"><title>${err.status} ${title}</title>` +
      `<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:4rem auto;padding:0 1rem;color:#222}` +
      `code,pre{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px}pre{padding:.8rem;overflow:auto}</style></head>` +
      `<body><h1>${err.status} ${title}</h1><p>${escapeHtml(err.message)}</p><p><code>${err.code}</code> · request ${requestId}</p>` +
      (lastLines.length ? `<p>Last lines of the app's output:</p><pre>${escapeHtml(lastLines.join('\n'))}</pre>` : '') +
      `<p><small>served by cellhost</small></p></body></html>`;
  } else {
    headers.push('content-type', 'application/json');
    body = JSON.stringify({ error: { code: err.code, message: err.message, requestId, ...(lastLines.length ? { lastLines } : {}) } });
  }
  headers.push('content-length', String(Buffer.byteLength(body)));
  // the rest of an oversized request would be read for nothing: end the connection
  res.writeHead(err.status, http.STATUS_CODES[err.status] ?? '', headers, { close: err.status === 413 || err.status === 431, contentLength: true });
  res.end(body);
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** what a listener answers when the HTTP parser gives up: a coded error, then close */
export function answerClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'HPE_HEADERS_TIMEOUT' ? 408 : 400;
  const code = status === 431 ? 'ERR_HEADERS_TOO_LARGE' : status === 408 ? 'ERR_HEADERS_TIMEOUT' : 'ERR_BAD_REQUEST';
  // the router's own refusals say what was wrong; the parser's messages are its internals
  const message = err.code === 'HPE_NO_HOST' || err.code === 'HPE_DUPLICATE_HOST' ? err.message : http.STATUS_CODES[status];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
}
