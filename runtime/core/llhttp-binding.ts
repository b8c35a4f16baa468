// Node's own HTTP/1 parser (llhttp) as the internal module `_http_common` exposes it to
// http.Server. It is not a public API (DEP0199 deprecates reaching it), so this is the one place
// that does: it loads the binding, checks the shape the router relies on, and runs one request
// and one response through it. When the module is gone or its interface changed, the reason is
// returned and the router serves with node:http's server, and sends to instances with undici,
// instead (slower, same behaviour).
import { createRequire } from 'node:module';

export interface LlhttpParser {
  /** the connection the parser reads for now (parsers are reused) */
  conn: unknown;
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string });
  /** the peer closed: a response whose body runs to the close is complete (or an error) */
  finish(): number | (Error & { code?: string }) | undefined;
  /** read a socket's handle in C++, calling back at kOnExecute after each read (as http.Server) */
  consume?(handle: object): void;
  unconsume?(): void;
  /** inside kOnExecute: the bytes of the read just parsed */
  getCurrentBuffer?(): Buffer;
  remove?(): void;
  free(): void;
  [callback: number]: unknown;
}

export interface LlhttpBinding {
  newParser(): LlhttpParser;
  /** method names by the parser's method numbers */
  methods: readonly string[];
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  /** the callback after each read of a consumed handle; null: the parser cannot consume, and is fed */
  kOnExecute: number | null;
}

export type BindingLoad = { ok: true; binding: LlhttpBinding } | { ok: false; reason: string };

interface ParserClass {
  new (): LlhttpParser;
  REQUEST: unknown;
  RESPONSE: unknown;
  kOnMessageBegin: unknown;
  kOnHeaders: unknown;
  kOnHeadersComplete: unknown;
  kOnBody: unknown;
  kOnMessageComplete: unknown;
  kOnExecute?: unknown;
}

const CALLBACKS = ['kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete'] as const;

/**
 * The binding, checked; `disabled` (the setting that forces the fallback) reports it unavailable,
 * and `load` stands in for the module (tests). The router calls this once, when it is created.
 */
export function loadLlhttpBinding(opts: { disabled?: boolean; load?: () => unknown } = {}): BindingLoad {
  if (opts.disabled) return { ok: false, reason: 'turned off (CELLHOST_HTTP_PARSER=node)' };
  let mod: { HTTPParser?: ParserClass; methods?: unknown };
  try {
    // a builtin: createRequire needs a path only to resolve files, and works in the bundle too
    mod = (opts.load ? opts.load() : createRequire(process.execPath)('_http_common')) as typeof mod;
  } catch (err) {
    return { ok: false, reason: `_http_common did not load: ${(err as Error).message}` };
  }
  const P = mod?.HTTPParser;
  const methods = mod?.methods;
  if (typeof P !== 'function') return { ok: false, reason: '_http_common has no HTTPParser' };
  if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string') || !methods.includes('GET')) {
    return { ok: false, reason: '_http_common has no method table' };
  }
  if (typeof P.REQUEST !== 'number' || typeof P.RESPONSE !== 'number') return { ok: false, reason: 'HTTPParser.REQUEST or RESPONSE is not a number' };
  const keys = CALLBACKS.map((k) => P[k]);
  if (!keys.every((k) => Number.isInteger(k)) || new Set(keys).size !== keys.length) return { ok: false, reason: 'HTTPParser callback slots changed' };
  for (const fn of ['initialize', 'execute', 'finish', 'free'] as const) {
    if (typeof P.prototype?.[fn] !== 'function') return { ok: false, reason: `HTTPParser.prototype.${fn} is missing` };
  }
  const binding: LlhttpBinding = {
    newParser: () => new P(),
    methods: methods as string[],
    REQUEST: P.REQUEST,
    RESPONSE: P.RESPONSE as number,
    kOnMessageBegin: P.kOnMessageBegin as number,
    kOnHeaders: P.kOnHeaders as number,
    kOnHeadersComplete: P.kOnHeadersComplete as number,
    kOnBody: P.kOnBody as number,
    kOnMessageComplete: P.kOnMessageComplete as number,
    kOnExecute: canConsume(P, keys as number[]) ? (P.kOnExecute as number) : null,
  };
  const problem = tryOneRequest(binding) ?? tryOneResponse(binding);
  return problem ? { ok: false, reason: `HTTPParser does not parse as expected: ${problem}` } : { ok: true, binding };
}

/** the parser can read a handle itself: its methods and callback slot are there */
function canConsume(P: ParserClass, slots: number[]): boolean {
  const k = P.kOnExecute;
  const methods = ['consume', 'unconsume', 'getCurrentBuffer'] as const;
  return Number.isInteger(k) && !slots.includes(k as number) && methods.every((m) => typeof (P.prototype as unknown as Record<string, unknown>)[m] === 'function');
}

/** one request with a body through a parser: the callbacks' arguments in the order http1 reads them */
function tryOneRequest(b: LlhttpBinding): string | null {
  const seen: string[] = [];
  let head: { minor: unknown; headers: unknown; method: unknown; url: unknown; keepAlive: unknown } | null = null;
  return probe(b, (p) => {
    p[b.kOnMessageBegin] = () => void seen.push('begin');
    p[b.kOnHeaders] = () => void seen.push('headers');
    p[b.kOnHeadersComplete] = (_major: unknown, minor: unknown, headers: unknown, method: unknown, url: unknown, _s: unknown, _m: unknown, _upgrade: unknown, keepAlive: unknown) => {
      head = { minor, headers, method, url, keepAlive };
      seen.push('head');
      return 0;
    };
    p[b.kOnBody] = (chunk: unknown) => void seen.push(`body:${Buffer.isBuffer(chunk) ? chunk.toString() : typeof chunk}`);
    p[b.kOnMessageComplete] = () => void seen.push('complete');
    p.initialize(b.REQUEST, {}, 16 * 1024, 0);
    const req = Buffer.from('POST /probe?x=1 HTTP/1.1\r\nHost: probe.test\r\nContent-Length: 2\r\n\r\nok');
    const ret = p.execute(req);
    if (ret !== req.length) return `execute returned ${ret instanceof Error ? ret.message : String(ret)}`;
    const h = head as { minor: unknown; headers: unknown; method: unknown; url: unknown; keepAlive: unknown } | null;
    if (!h) return 'no head callback';
    if (h.minor !== 1 || h.url !== '/probe?x=1' || b.methods[h.method as number] !== 'POST' || h.keepAlive !== true) return 'head arguments changed';
    if (JSON.stringify(h.headers) !== JSON.stringify(['Host', 'probe.test', 'Content-Length', '2'])) return 'header list changed';
    if (seen.join(',') !== 'begin,head,body:ok,complete') return `callbacks came as ${seen.join(',')}`;
    return null;
  });
}

/** one response with a body through a parser: the status arguments where the upstream client reads them */
function tryOneResponse(b: LlhttpBinding): string | null {
  let head: unknown[] | null = null;
  let body = '';
  let complete = false;
  return probe(b, (p) => {
    p[b.kOnMessageBegin] = () => {};
    p[b.kOnHeaders] = () => {};
    p[b.kOnHeadersComplete] = (...args: unknown[]) => {
      head = args;
      return 0;
    };
    p[b.kOnBody] = (chunk: unknown) => void (body += Buffer.isBuffer(chunk) ? chunk.toString() : typeof chunk);
    p[b.kOnMessageComplete] = () => void (complete = true);
    p.initialize(b.RESPONSE, {}, 16 * 1024, 0);
    const res = Buffer.from('HTTP/1.1 201 Made\r\nContent-Length: 2\r\n\r\nok');
    const ret = p.execute(res);
    if (ret !== res.length) return `execute returned ${ret instanceof Error ? ret.message : String(ret)}`;
    const h = head as unknown[] | null;
    if (!h) return 'no head callback for a response';
    if (h[1] !== 1 || h[5] !== 201 || h[6] !== 'Made' || h[8] !== true) return 'response head arguments changed';
    if (JSON.stringify(h[2]) !== JSON.stringify(['Content-Length', '2'])) return 'response header list changed';
    if (body !== 'ok' || !complete) return 'a response body came otherwise';
    return null;
  });
}

/** a fresh parser through `run`: its answer, or what it threw; the parser freed after either */
function probe(b: LlhttpBinding, run: (p: LlhttpParser) => string | null): string | null {
  const p = b.newParser();
  try {
    return run(p);
  } catch (err) {
    return (err as Error).message;
  } finally {
    try {
      p.remove?.();
      p.free();
    } catch {
      // a parser that failed half-way: nothing of it is reused
    }
  }
}
