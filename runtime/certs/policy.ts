// When to renew, how long to wait after a failure, and what counts against a CA's weekly limit.
// Pure functions of times, so the schedule can be read and tested without a CA or a clock.

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** renewal starts 30 days before expiry, or with a third of the lifetime left for short-lived certificates */
export function renewalAt(notBefore: number, notAfter: number): number {
  const lifetime = Math.max(0, notAfter - notBefore);
  return notAfter - Math.min(30 * DAY, lifetime / 3);
}

/**
 * After the nth failure in a row (1-based): at most three attempts in the first hour and then
 * hours apart, so a name that keeps failing stays far below Let's Encrypt's 5 failed
 * validations per name per hour, across restarts too (the count is stored).
 */
const FAILURE_DELAYS = [MINUTE, 10 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY];
export function retryDelay(failures: number): number {
  return FAILURE_DELAYS[Math.min(Math.max(failures, 1), FAILURE_DELAYS.length) - 1]!;
}

/** DNS not pointing here costs the CA nothing: checked again soon, then every 10 minutes */
const DNS_DELAYS = [15_000, 30_000, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE];
export function dnsRecheckDelay(checks: number): number {
  return DNS_DELAYS[Math.min(Math.max(checks, 1), DNS_DELAYS.length) - 1]!;
}

/** Let's Encrypt: 50 new certificates per registered domain per 7 days (renewals do not count) */
export const WEEKLY_LIMIT = 50;
export const WEEK = 7 * DAY;

// second-level labels under which registrations are made (example.co.uk), for the common ccTLDs
const SECOND_LEVEL = new Set(['co', 'com', 'net', 'org', 'gov', 'edu', 'ac', 'or', 'ne', 'go', 'gob', 'nic', 'ltd', 'plc', 'sch', 'mil']);

/** the registered domain a CA counts a name under: example.com for a.b.example.com, example.co.uk for x.example.co.uk */
export function registeredDomain(name: string): string {
  const labels = name.replace(/^\*\./, '').split('.');
  const n = labels.length;
  const keep = n >= 3 && labels[n - 1]!.length === 2 && SECOND_LEVEL.has(labels[n - 2]!) ? 3 : 2;
  return labels.slice(-keep).join('.');
}
