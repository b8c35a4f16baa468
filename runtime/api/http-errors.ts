// Every error the API returns has the same body: {error: {code, message}}. Unknown errors
// become a 500 with a request id and no detail; the detail goes to the platform log.
import crypto from 'node:crypto';
import type { Context } from 'hono';
import { z } from '../core/zod.ts';
import { CellhostError, diskFullError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';

export function zodToError(err: z.ZodError): CellhostError {
  const issue = err.issues[0]!;
  const field = issue.path.join('.');
  const message = issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : issue.message;
  return new CellhostError('ERR_VALIDATION', field ? `${field}: ${message}` : message, { details: { field: field || undefined } });
}

export function toResponse(c: Context, err: unknown, log: Logger): Response {
  const coded =
    err instanceof CellhostError
      ? err
      : err instanceof z.ZodError
        ? zodToError(err)
        : diskFullError(err);
  if (coded) return c.json(coded.toJSON(), coded.status as 400);
  const requestId = crypto.randomUUID();
  log.error('api.unhandled', { requestId, path: c.req.path, error: err instanceof Error ? err.stack : String(err) });
  return c.json({ error: { code: 'ERR_INTERNAL', message: `internal error (request ${requestId})` } }, 500);
}

/** parse a JSON body against a schema, with coded errors for every way it can be wrong */
export async function readJson<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  const text = await c.req.text();
  if (!text.trim()) throw new CellhostError('ERR_BODY_MISSING', 'this request needs a JSON body');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CellhostError('ERR_VALIDATION', 'the body is not valid JSON');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw zodToError(parsed.error);
  return parsed.data;
}
