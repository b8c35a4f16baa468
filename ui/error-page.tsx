// Errors as pages: a coded error shows its message and status; anything else is a 500 with a
// request id, its detail only in the platform log.
import crypto from 'node:crypto';
import type { Context } from 'hono';
import { CellhostError } from '../runtime/core/errors.ts';
import type { Logger } from '../runtime/core/log.ts';
import type { UiEnv } from './deps.ts';
import { Layout } from './layout.tsx';
import { chromeFor, sendPage } from './render.ts';

const TITLES: Record<number, string> = { 400: 'Bad request', 403: 'Refused', 404: 'Not found', 409: 'Conflict', 413: 'Too large', 429: 'Too many requests', 500: 'Something went wrong' };

export function sendErrorPage(c: Context<UiEnv>, err: unknown, log: Logger): Promise<Response> {
  let status = 500;
  let message: string;
  let code: string;
  if (err instanceof CellhostError) {
    status = err.status;
    message = err.message;
    code = err.code;
  } else {
    const requestId = crypto.randomUUID();
    log.error('ui.unhandled', { requestId, path: c.req.path, error: err instanceof Error ? err.stack : String(err) });
    message = `An internal error happened (request ${requestId}); the platform log has the detail.`;
    code = 'ERR_INTERNAL';
  }
  const chrome = c.get('session') ? chromeFor(c) : null;
  return sendPage(
    c,
    <Layout title={TITLES[status] ?? 'Error'} chrome={chrome}>
      <section class="card error-page">
        <h1>{TITLES[status] ?? 'Error'}</h1>
        <p id="error-message">{message}</p>
        <p class="muted small mono">
          {code} · HTTP {status}
        </p>
        <p>
          <a href="/services">Back to the services</a>
        </p>
      </section>
    </Layout>,
    status,
  );
}
