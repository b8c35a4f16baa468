// Debian's Chromium driven by playwright-core (no browser download): what the browser tests need.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';
/** where the browser tests put their screenshots */
export const SCREENSHOTS = process.env.UI_SCREENSHOTS ?? path.join(os.tmpdir(), 'cellhost-ui-screenshots');

async function loadPlaywright(): Promise<typeof import('playwright-core') | null> {
  try {
    return await import('playwright-core');
  } catch {
    return null;
  }
}

export const playwright = await loadPlaywright();

/** what is missing to drive Chromium, as install hints */
export function browserMissing(): string[] {
  return [!fs.existsSync(CHROMIUM) && `${CHROMIUM} (apt-get install chromium)`, !playwright && 'playwright-core (npm ci)'].filter((x): x is string => Boolean(x));
}
