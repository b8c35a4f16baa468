// The stylesheet and script with a version from their content, so pages can link them with a
// long cache lifetime and a new build still reaches every browser.
import crypto from 'node:crypto';
import { APP_CSS } from './app-css.ts';
import { APP_JS } from './app-js.ts';

export const ASSET_VERSION = crypto.createHash('sha256').update(APP_CSS).update(APP_JS).digest('hex').slice(0, 12);

// a cell: a rounded square with a dot; browsers ask for /favicon.ico whatever the page says
const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect x="2" y="2" width="28" height="28" rx="8" fill="#2459d6"/><circle cx="16" cy="16" r="6" fill="#fff"/></svg>`;

export const ASSETS: Record<string, { body: string; type: string }> = {
  '/static/app.css': { body: APP_CSS, type: 'text/css; charset=utf-8' },
  '/static/app.js': { body: APP_JS, type: 'text/javascript; charset=utf-8' },
  '/static/icon.svg': { body: ICON, type: 'image/svg+xml' },
  '/favicon.ico': { body: ICON, type: 'image/svg+xml' },
};
