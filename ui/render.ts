// Sending a page: doctype, status, and headers that keep pages out of caches and frames.
import type { Context } from 'hono';
import type { UiEnv } from './deps.ts';
import type { PageChrome } from './layout.tsx';

export const PAGE_HEADERS: Record<string, string> = {
  'cache-control': 'no-store',
  // no inline script anywhere; inline style attributes only carry colours (ANSI 256/truecolor)
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};

export async function sendPage(c: Context, node: unknown, status = 200): Promise<Response> {
  // a JSX node renders with toString(), which is a promise when a component is async
  const html = await (node as { toString(): string | Promise<string> }).toString();
  return c.body('<!DOCTYPE html>' + html, status as 200, { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8' });
}

/** the page frame's data for the signed-in session; takes the session's flash message */
export function chromeFor(c: Context<UiEnv>): PageChrome {
  const session = c.get('session');
  const flash = session.flash;
  session.flash = null;
  return { csrf: session.csrf, tokenName: c.get('token').name, flash };
}

/** redirect after a POST, with a message for the next page */
export function redirectWith(c: Context<UiEnv>, location: string, flash?: string): Response {
  if (flash) c.get('session').flash = flash;
  return c.redirect(location, 303);
}

export const enc = encodeURIComponent;
