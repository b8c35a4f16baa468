// The CLI's side of the management API: settings from CELLHOST_URL / CELLHOST_TOKEN or the
// file `cellhost login` writes, and a fetch wrapper that turns API errors into readable ones.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface ClientSettings {
  url: string;
  token: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function clientConfigFile(env: Record<string, string | undefined>): string {
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'cellhost', 'client.json');
}

export function loadClientSettings(env: Record<string, string | undefined>): ClientSettings {
  let saved: Partial<ClientSettings> = {};
  try {
    saved = JSON.parse(fs.readFileSync(clientConfigFile(env), 'utf8')) as Partial<ClientSettings>;
  } catch {
    // no saved login: defaults and env only
  }
  return {
    url: (env.CELLHOST_URL || saved.url || 'http://127.0.0.1:9090').replace(/\/+$/, ''),
    token: env.CELLHOST_TOKEN || saved.token || null,
  };
}

export function saveClientSettings(env: Record<string, string | undefined>, settings: ClientSettings): string {
  const file = clientConfigFile(env);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify(settings, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

export interface Client {
  settings: ClientSettings;
  request<T = unknown>(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  /** raw response for streams; throws ApiError on a non-2xx answer */
  raw(method: string, p: string, init?: { body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal }): Promise<Response>;
}

export function createClient(settings: ClientSettings): Client {
  async function raw(method: string, p: string, init: { body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal } = {}) {
    const headers: Record<string, string> = { ...init.headers };
    if (settings.token) headers.authorization = `Bearer ${settings.token}`;
    let res: Response;
    try {
      res = await fetch(settings.url + p, { method, headers, body: init.body, duplex: 'half', signal: init.signal } as RequestInit);
    } catch (err) {
      if (init.signal?.aborted) throw err;
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new ApiError(0, 'ERR_UNREACHABLE', `cannot reach cellhost at ${settings.url} (${cause}): is "cellhost serve" running? Set CELLHOST_URL or run "cellhost login"`);
    }
    if (!res.ok) {
      const text = await res.text();
      let code = `HTTP_${res.status}`;
      let message = text || res.statusText;
      try {
        const parsed = JSON.parse(text) as { error?: { code: string; message: string } };
        if (parsed.error) ({ code, message } = parsed.error);
      } catch {
        // not JSON: keep the text
      }
      throw new ApiError(res.status, code, message);
    }
    return res;
  }
  return {
    settings,
    raw,
    async request(method, p, body, headers) {
      const res = await raw(method, p, {
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      });
      if (res.status === 204) return undefined as never;
      return (await res.json()) as never;
    },
  };
}

/** reads a text/event-stream body, calling back once per event (with its id, when it has one) */
export async function readSse(res: Response, onEvent: (event: string, data: string, id: string | undefined) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buf += value;
    let sep: number;
    while ((sep = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, sep);
      buf = buf.slice(sep + 2);
      let event = 'message';
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        else if (line.startsWith('id:')) id = line.slice(3).trim();
      }
      // a block of comments only (keep-alive) is no event
      if (data.length || event !== 'message') onEvent(event, data.join('\n'), id);
    }
  }
}
