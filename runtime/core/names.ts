// Validation rules shared by the API, the CLI and the UI.
import net from 'node:net';
import url from 'node:url';
import { CellhostError } from './errors.ts';
import { z } from './zod.ts';

/** A service name is a DNS label: it becomes `<name>.<domain>`. */
export const serviceNameSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'lowercase letters, digits and hyphens, 1–63 characters, not starting or ending with a hyphen');

/**
 * A git branch name as `git check-ref-format --branch` takes it, kept to the characters a URL,
 * a log line and a shell word carry unchanged.
 */
export const branchNameSchema = z
  .string()
  .max(255)
  .regex(/^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)(?!.*\.lock(?:\/|$))(?!.*\/\.)(?!\.)[A-Za-z0-9._\/+-]+(?<![./])$/, 'a git branch name: letters, digits and . _ / + -, no "..", not starting with - or . nor ending with / or . or .lock');

/** `edge`: a module exporting a fetch handler, run by cellhost's edge host on the host's node */
export const RUNTIMES = ['python', 'node', 'go', 'rust', 'edge'] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

export const envNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and underscores, not starting with a digit');

export const MEMORY_MIN_MB = 128;
export const MEMORY_MAX_MB = 7076;

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A custom domain as a user attaches it: exactly the name a CA issues for and a browser sends,
 * so nothing is silently rewritten. Each way to be wrong has its own code.
 */
export function checkDomainName(name: string): CellhostError | null {
  const fail = (code: ConstructorParameters<typeof CellhostError>[0], message: string) => new CellhostError(code, message, { details: { field: 'domain' } });
  if (!name) return fail('ERR_DOMAIN_INVALID', 'the domain is empty');
  if (name.length > 253) return fail('ERR_DOMAIN_TOO_LONG', `the domain is ${name.length} characters long; DNS allows 253`);
  if (name.endsWith('.')) return fail('ERR_DOMAIN_TRAILING_DOT', `"${name}" ends with a dot: send it as "${name.replace(/\.+$/, '')}"`);
  if (name.includes('*')) return fail('ERR_DOMAIN_WILDCARD', `"${name}" is a wildcard: attach each name a service answers on`);
  if (net.isIP(name.replace(/^\[|\]$/g, '')) || /^[\d.]+$/.test(name)) return fail('ERR_DOMAIN_IP', `"${name}" is an IP address: attach a domain name that points to it`);
  if (/[^\x00-\x7f]/.test(name)) {
    const ascii = url.domainToASCII(name);
    return fail('ERR_DOMAIN_NOT_PUNYCODE', ascii ? `"${name}" is an internationalized name: send its ASCII form "${ascii}"` : `"${name}" is not a valid internationalized name`);
  }
  if (/[A-Z]/.test(name)) return fail('ERR_DOMAIN_UPPERCASE', `"${name}" has capitals: send it as "${name.toLowerCase()}"`);
  const labels = name.split('.');
  if (labels.length < 2) return fail('ERR_DOMAIN_INVALID', `"${name}" is a single label: attach a full name such as app.example.com`);
  for (const label of labels) {
    if (!LABEL.test(label)) return fail('ERR_DOMAIN_INVALID', `"${name}": the label "${label}" is not 1–63 letters, digits and inner hyphens`);
    if (label.startsWith('xn--') && !url.domainToUnicode(label)) return fail('ERR_DOMAIN_INVALID', `"${name}": the label "${label}" is not valid punycode`);
  }
  if (/^\d+$/.test(labels.at(-1)!)) return fail('ERR_DOMAIN_INVALID', `"${name}" ends in a numeric label`);
  return null;
}
