// `POST /tasks/<service>/<path>` on the router: with the service's task token, the request
// (method, headers, body up to 5 MB) is stored durably and answered 202 with a task id at once;
// the workers deliver it to the app as `<method> /<path>` later.
//
// Served only on hosts no service owns (the bare base domain, an IP address), so an app's own
// /tasks/ paths on its own host are never taken: see isPlatformHost.
import crypto from 'node:crypto';
import http from 'node:http';
import type { Clock } from '../core/clock.ts';
import { CellhostError, describeError, diskFullError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { serviceNameSchema } from '../core/names.ts';
import { sendError } from '../router/error-page.ts';
import type { RouterRequest as InboundRequest } from '../router/request.ts';
import { secretMatches } from '../store/service-secrets.ts';
import type { NewTask } from '../store/tasks.ts';

export const TASKS_PREFIX = '/tasks/';
/** a task's body at most: 5 MB (5,242,880 bytes) */
export const TASK_BODY_LIMIT = 5 * 1024 * 1024;
export const TASK_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'];
/** a task's body must arrive within this (a client dripping it cannot hold a connection) */
export const TASK_BODY_TIMEOUT_MS = 120_000;
/** free space the data disk must keep beyond a task's body for it to be accepted */
const DISK_FLOOR_BYTES = 1024 * 1024;

// not stored with the task: hop-by-hop, framing, routing and forwarding fields (the delivery gets
// its own), and any X-Cellhost-* a client sent (the platform's own fields are set on delivery)
const DROPPED = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate',
  'proxy-authorization', 'host', 'content-length', 'expect', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id',
]);

export interface TaskIntakeDeps {
  serviceExists(name: string): boolean;
  /** the service's task token, or null when none was made */
  tokenFor(service: string): string | null;
  /** stores the task durably: resolved means it survives a crash */
  enqueue(task: NewTask): Promise<void>;
  /** free bytes on the data disk */
  freeBytes(): number;
  onAccepted(service: string): void;
  /** default TASK_BODY_TIMEOUT_MS */
  bodyTimeoutMs?: number;
  clock: Clock;
  log: Logger;
}

export interface TaskIntake {
  /** answers a /tasks/ request; false for any other path (the caller answers it) */
  handle(req: InboundRequest, requestId: string): boolean;
}

export function newTaskId(): string {
  return 'tsk_' + crypto.randomBytes(12).toString('base64url');
}

/** the token a client shows: X-Cellhost-Task-Token, or Authorization: Bearer */
function presentedToken(req: InboundRequest): { token: string; viaAuthorization: boolean } | null {
  let bearer: string | null = null;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.names[i];
    if (name === 'x-cellhost-task-token') return { token: req.rawHeaders[i + 1]!.trim(), viaAuthorization: false };
    if (name === 'authorization') {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.rawHeaders[i + 1]!);
      if (m) bearer = m[1]!;
    }
  }
  return bearer === null ? null : { token: bearer, viaAuthorization: true };
}

function answer(req: InboundRequest, status: number, body: unknown, headers: string[], close = false): void {
  const text = JSON.stringify(body);
  req.res.writeHead(status, http.STATUS_CODES[status] ?? '', [...headers, 'content-type', 'application/json', 'cache-control', 'no-store', 'content-length', String(Buffer.byteLength(text))], { contentLength: true, close });
  req.res.end(text);
}

export function createTaskIntake(deps: TaskIntakeDeps): TaskIntake {
  const bodyTimeoutMs = deps.bodyTimeoutMs ?? TASK_BODY_TIMEOUT_MS;
  return {
    handle(req, requestId) {
      if (!req.url.startsWith(TASKS_PREFIX)) return false;
      const fail = (err: CellhostError) => {
        if (!req.complete) req.dump();
        sendError(req, err, requestId);
      };
      const rest = req.url.slice(TASKS_PREFIX.length);
      const cut = rest.search(/[/?]/);
      const service = cut < 0 ? rest : rest.slice(0, cut);
      const tail = cut < 0 ? '' : rest.slice(cut);
      const path = tail.startsWith('/') ? tail : '/' + tail;
      if (!serviceNameSchema.safeParse(service).success || !deps.serviceExists(service)) {
        fail(new CellhostError('ERR_SERVICE_NOT_FOUND', `no service named "${service}": tasks are sent to /tasks/<service>/<path>`));
        return true;
      }
      if (!TASK_METHODS.includes(req.method)) {
        if (!req.complete) req.dump();
        answer(req, 405, { error: { code: 'ERR_METHOD_NOT_ALLOWED', message: `a task is sent with ${TASK_METHODS.join(', ')}; the app gets the same method`, requestId } }, [
          'allow', TASK_METHODS.join(', '), 'x-request-id', requestId, 'x-cellhost-error', 'ERR_METHOD_NOT_ALLOWED',
        ]);
        return true;
      }
      const presented = presentedToken(req);
      if (!presented) {
        fail(new CellhostError('ERR_AUTH_MISSING', `a task needs the service's task token: "Authorization: Bearer <token>" or "X-Cellhost-Task-Token: <token>" (cellhost tasks token ${service})`));
        return true;
      }
      const stored = deps.tokenFor(service);
      if (stored === null || !secretMatches(presented.token, stored)) {
        fail(new CellhostError('ERR_AUTH_INVALID', `that is not the task token of "${service}"`));
        return true;
      }
      const declared = req.contentLength === undefined ? 0 : Number(req.contentLength);
      if (declared > TASK_BODY_LIMIT) {
        fail(new CellhostError('ERR_BODY_TOO_LARGE', `a task's body is at most ${TASK_BODY_LIMIT} bytes (5 MB)`));
        return true;
      }
      const roomFor = (bytes: number) => {
        let free: number;
        try {
          free = deps.freeBytes();
        } catch (err) {
          deps.log.warn('tasks.statfs_failed', { error: describeError(err) });
          return true;
        }
        return free >= bytes + DISK_FLOOR_BYTES;
      };
      const diskFull = () => new CellhostError('ERR_DISK_FULL', 'the data disk is full: the task was not accepted (free space and send it again)');
      if (!roomFor(declared)) {
        fail(diskFull());
        return true;
      }

      const headers: string[] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.names[i]!;
        if (DROPPED.has(name) || name.startsWith('x-cellhost-')) continue;
        if (name === 'authorization' && presented.viaAuthorization) continue;
        headers.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
      }

      const chunks: Buffer[] = [];
      let settled = false;
      let tooLarge = false;
      let bodyTimer: NodeJS.Timeout | null = null;
      const accept = () => {
        if (settled) return;
        settled = true;
        if (bodyTimer) clearTimeout(bodyTimer);
        const body = chunks.length ? Buffer.concat(chunks) : null;
        if (body && !roomFor(body.length)) {
          fail(diskFull());
          return;
        }
        const task: NewTask = { id: newTaskId(), service, method: req.method, path, headers, body, createdAt: deps.clock.now() };
        deps.enqueue(task).then(
          () => {
            if (!req.res.destroyed) {
              answer(req, 202, { id: task.id, service, status: 'queued', createdAt: new Date(task.createdAt).toISOString() }, ['x-request-id', requestId, 'x-cellhost-task-id', task.id]);
            }
            try {
              deps.onAccepted(service);
            } catch (err) {
              deps.log.error('tasks.kick_failed', { service, error: describeError(err) });
            }
          },
          (err: unknown) => {
            const full = diskFullError(err);
            if (full) {
              fail(new CellhostError('ERR_DISK_FULL', 'the data disk is full: the task was not accepted (free space and send it again)', { cause: err }));
              return;
            }
            deps.log.error('tasks.enqueue_failed', { service, error: describeError(err) });
            fail(new CellhostError('ERR_INTERNAL', 'the task could not be stored'));
          },
        );
      };
      const refuseTooLarge = () => {
        if (settled) return;
        settled = true;
        if (bodyTimer) clearTimeout(bodyTimer);
        // the 413 ends the connection; the rest of the body is read and dropped as it closes (linger.ts)
        fail(new CellhostError('ERR_BODY_TOO_LARGE', `a task's body is at most ${TASK_BODY_LIMIT} bytes (5 MB)`));
      };
      req.bodyLimit = TASK_BODY_LIMIT;
      req.listener = {
        aborted: () => {
          settled = true;
          if (bodyTimer) clearTimeout(bodyTimer);
        },
        drained: () => {},
        bodyTooLarge: () => {
          tooLarge = true;
          refuseTooLarge();
        },
      };
      const body = req.body;
      if (!body) {
        accept();
        return true;
      }
      bodyTimer = setTimeout(() => {
        if (settled) return;
        settled = true;
        req.dump();
        // the connection ends with the answer: the rest of a dripping body is not waited for
        answer(req, 408, { error: { code: 'ERR_BODY_TIMEOUT', message: `the task's body did not arrive within ${bodyTimeoutMs / 1000} s`, requestId } }, [
          'x-request-id', requestId, 'x-cellhost-error', 'ERR_BODY_TIMEOUT',
        ], true);
      }, bodyTimeoutMs);
      bodyTimer.unref();
      body.on('data', (chunk: Buffer) => chunks.push(chunk));
      body.on('end', () => {
        if (!tooLarge) accept();
      });
      return true;
    },
  };
}
