// What the router sends on an instance's connections, and how it hears the answer: the shape
// of undici's dispatch API (which the fallback is), with the response's header fields as strings.
import type { Readable } from 'node:stream';

export interface UpstreamRequest {
  path: string;
  method: string;
  /** [name, value, ...], Host among them */
  headers: string[];
  /** the request's body; null: none */
  body: Readable | null;
}

export interface UpstreamHandler {
  /** the request has a connection; `abort` ends it (and the request fails with that error) */
  onConnect(abort: (err: Error) => void): void;
  /** the response's head; `resume` restarts reading after onData returned false */
  onHeaders(status: number, headers: string[], resume: () => void, statusMessage: string): boolean;
  /** false: stop reading the app until resume */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  /** the request failed (the app refused, dropped or broke the connection, or it was aborted) */
  onError(err: Error): void;
}

/** one instance's connections */
export interface Upstream {
  dispatch(req: UpstreamRequest, handler: UpstreamHandler): void;
  /** closes every connection; requests on them and waiting fail */
  destroy(): Promise<void>;
}
