// Validation rules shared by the API, the CLI and the UI.
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

export const RUNTIMES = ['python', 'node', 'go', 'rust'] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

export const envNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and underscores, not starting with a digit');

export const MEMORY_MIN_MB = 128;
export const MEMORY_MAX_MB = 7076;
