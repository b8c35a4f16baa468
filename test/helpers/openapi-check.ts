// Checks an API response against the OpenAPI document the platform serves: the route (method and
// path template) must be in it, the status must be one it lists for that route, the media type one
// it lists for that status, and a JSON body must match the schema it gives. A request to no route
// must be answered with a coded error whose code belongs to its status.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { ERROR_STATUS } from '../../runtime/core/errors.ts';

export interface SeenResponse {
  method: string;
  /** the path as the server saw it (no query) */
  path: string;
  status: number;
  contentType: string | null;
  text: string;
}

interface Operation {
  responses: Record<string, { content?: Record<string, unknown> } | undefined>;
}
interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
}

export type ResponseChecker = (res: SeenResponse) => void;

const pointer = (...parts: string[]) => parts.map((p) => '/' + p.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
const essence = (type: string) => type.split(';')[0]!.trim().toLowerCase();
const isJson = (type: string) => /^application\/([a-z.-]+\+)?json$/.test(essence(type));

export function createResponseChecker(doc: OpenApiDoc): ResponseChecker {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false, validateSchema: false });
  ajv.addSchema(doc as object, 'openapi');
  const validators = new Map<string, ValidateFunction>();
  const validatorAt = (ptr: string) => {
    let v = validators.get(ptr);
    if (!v) {
      v = ajv.getSchema('openapi#' + ptr);
      if (!v) throw new Error(`no schema at ${ptr} in the OpenAPI document`);
      validators.set(ptr, v);
    }
    return v;
  };
  const templates = Object.keys(doc.paths).map((t) => ({
    template: t,
    regex: new RegExp('^' + t.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+') + '$'),
  }));

  return function checkResponse(res) {
    const where = `${res.method} ${res.path.length > 200 ? res.path.slice(0, 200) + '…' : res.path} → ${res.status}`;
    const fail = (why: string): never => {
      throw new Error(`${where}: ${why} (OpenAPI document)\nbody: ${res.text.slice(0, 600)}`);
    };
    const method = res.method.toLowerCase();
    const template = templates.find((t) => t.regex.test(res.path) && doc.paths[t.template]![method])?.template;
    if (!template) {
      // no route: a coded error of the status its code has
      if (res.status < 400) fail('a route the document does not list answered with success');
      const body = parseJson(res.text, fail);
      const validate = validatorAt(pointer('components', 'schemas', 'Error'));
      if (!validate(body)) fail(`the error does not match Error: ${ajv.errorsText(validate.errors)}`);
      const code = (body as { error: { code: string } }).error.code;
      if (ERROR_STATUS[code as keyof typeof ERROR_STATUS] !== res.status) fail(`${code} is not a ${res.status} code`);
      return;
    }
    const response = doc.paths[template]![method]!.responses[String(res.status)];
    if (!response) fail(`status ${res.status} is not listed for ${method.toUpperCase()} ${template}`);
    const content = response!.content;
    if (!content) {
      if (res.text !== '') fail(`a body where the document lists none`);
      return;
    }
    const type = res.contentType ?? '';
    const mediaType = Object.keys(content).find((m) => essence(m) === essence(type));
    if (!mediaType) fail(`content-type "${type}" is not one of ${Object.keys(content).join(', ')}`);
    if (!isJson(mediaType!)) return;
    const body = parseJson(res.text, fail);
    const validate = validatorAt(pointer('paths', template, method, 'responses', String(res.status), 'content', mediaType!, 'schema'));
    if (!validate(body)) fail(`the body does not match its schema: ${ajv.errorsText(validate.errors)}`);
  };
}

function parseJson(text: string, fail: (why: string) => never): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return fail('the body is not JSON');
  }
}

const checkers = new Map<string, Promise<ResponseChecker>>();

/** the checker for the platform at `baseUrl`, from the document it serves (fetched once) */
export function responseCheckerFor(baseUrl: string): Promise<ResponseChecker> {
  let checker = checkers.get(baseUrl);
  if (!checker) {
    checker = fetch(baseUrl + '/api/openapi.json').then(async (res) => {
      if (res.status !== 200) throw new Error(`GET ${baseUrl}/api/openapi.json → ${res.status}`);
      return createResponseChecker((await res.json()) as OpenApiDoc);
    });
    checkers.set(baseUrl, checker);
    checker.catch(() => checkers.delete(baseUrl));
  }
  return checker;
}
