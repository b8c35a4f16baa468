// A stand-in for the router's loopback (what cron and task deliveries send requests through):
// each request waits in `sent` until the test answers or fails it.
import type { LoopbackRequest, LoopbackResponse } from '../../runtime/router/loopback.ts';

export interface SentRequest {
  req: LoopbackRequest;
  /** `body` becomes the first 1024 bytes kept, as the loopback keeps them */
  answer(status: number, extra?: Partial<LoopbackResponse> & { body?: string }): void;
  fail(err: Error): void;
}

export const FAKE_DURATION_MS = 5;

/** a `send` that records each request in `sent` (the array is the test's, reset as it likes) */
export function recordingSend(sent: () => SentRequest[]): (req: LoopbackRequest) => Promise<LoopbackResponse> {
  return (req) =>
    new Promise<LoopbackResponse>((resolve, reject) => {
      sent().push({
        req,
        answer: (status, { body = '', ...extra } = {}) =>
          resolve({ status, bodyHead: Buffer.from(body).subarray(0, 1024), platformError: null, retryAfterMs: null, durationMs: FAKE_DURATION_MS, ...extra }),
        fail: reject,
      });
    });
}
