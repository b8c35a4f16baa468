// A manifest file read into plain values plus where each key and array element stands, so a
// wrong value or an unknown key can be reported with its line. TOML through toml-eslint-parser
// (a full TOML 1.0 parser that keeps every node's position), JSON through jsonc-parser with
// comments and trailing commas refused (so it accepts what JSON.parse accepts, with positions).
import { getNodeValue, parseTree, printParseErrorCode, type Node as JsonNode, type ParseError as JsonParseError } from 'jsonc-parser';
import { getStaticTOMLValue, ParseError as TomlParseError, parseTOML, type AST } from 'toml-eslint-parser';

/** the kind of a value, in the words of its format */
export type ValueKind = 'string' | 'integer' | 'float' | 'number' | 'boolean' | 'date' | 'array' | 'table' | 'object' | 'null';

export type KeyPath = readonly (string | number)[];

export interface LocatedDoc {
  /** the top-level table (TOML) or object (JSON) */
  value: Record<string, unknown>;
  /** 1-based line of the key (or array element) at `path`; 0 when unknown */
  line(path: KeyPath): number;
  kind(path: KeyPath): ValueKind | undefined;
}

export type ReadOutcome = { ok: true; doc: LocatedDoc } | { ok: false; line: number; column: number; message: string };

interface Spot {
  line: number;
  kind: ValueKind;
}

function docFrom(value: Record<string, unknown>, spots: Map<string, Spot>): LocatedDoc {
  const key = (p: KeyPath) => JSON.stringify(p);
  return { value, line: (p) => spots.get(key(p))?.line ?? 0, kind: (p) => spots.get(key(p))?.kind };
}

function tomlKind(node: AST.TOMLContentNode): ValueKind {
  if (node.type === 'TOMLArray') return 'array';
  if (node.type === 'TOMLInlineTable') return 'table';
  if (node.kind === 'string' || node.kind === 'integer' || node.kind === 'float' || node.kind === 'boolean') return node.kind;
  return 'date';
}

export function readToml(text: string): ReadOutcome {
  let ast: AST.TOMLProgram;
  try {
    ast = parseTOML(text);
  } catch (err) {
    if (err instanceof TomlParseError) return { ok: false, line: err.lineNumber, column: err.column + 1, message: err.message };
    throw err;
  }
  const spots = new Map<string, Spot>();
  const mark = (path: KeyPath, line: number, kind: ValueKind) => {
    const k = JSON.stringify(path);
    // the first place a key appears is where it was written (later dotted keys only add to a table)
    if (!spots.has(k)) spots.set(k, { line, kind });
  };
  const visitValue = (path: KeyPath, node: AST.TOMLContentNode) => {
    if (node.type === 'TOMLArray') {
      node.elements.forEach((el, i) => {
        mark([...path, i], el.loc.start.line, tomlKind(el));
        visitValue([...path, i], el);
      });
    } else if (node.type === 'TOMLInlineTable') {
      for (const kv of node.body) visitKeyValue(path, kv);
    }
  };
  const keyNames = (key: AST.TOMLKey) => key.keys.map((k) => (k.type === 'TOMLBare' ? k.name : k.value));
  const visitKeyValue = (prefix: KeyPath, kv: AST.TOMLKeyValue) => {
    const names = keyNames(kv.key);
    // a dotted key (a.b.c = 1) makes tables a and a.b on its line
    for (let i = 1; i < names.length; i++) mark([...prefix, ...names.slice(0, i)], kv.loc.start.line, 'table');
    const path = [...prefix, ...names];
    mark(path, kv.loc.start.line, tomlKind(kv.value));
    visitValue(path, kv.value);
  };
  for (const item of ast.body[0].body) {
    if (item.type === 'TOMLKeyValue') {
      visitKeyValue([], item);
      continue;
    }
    const resolved = item.resolvedKey;
    const line = item.loc.start.line;
    for (let i = 1; i < resolved.length; i++) {
      const isArrayOfTables = item.kind === 'array' && i === resolved.length - 1;
      mark(resolved.slice(0, i), line, isArrayOfTables ? 'array' : 'table');
    }
    mark(resolved, line, 'table');
    for (const kv of item.body) visitKeyValue(resolved, kv);
  }
  const value = getStaticTOMLValue(ast) as Record<string, unknown>;
  return { ok: true, doc: docFrom(value, spots) };
}

const JSON_ERRORS: Record<string, string> = {
  InvalidSymbol: 'unexpected character',
  InvalidNumberFormat: 'not a JSON number',
  PropertyNameExpected: 'a property name in double quotes was expected',
  ValueExpected: 'a value was expected',
  ColonExpected: 'a colon was expected',
  CommaExpected: 'a comma was expected',
  CloseBraceExpected: 'a closing brace was expected',
  CloseBracketExpected: 'a closing bracket was expected',
  EndOfFileExpected: 'there is more after the end of the JSON value',
  InvalidCommentToken: 'JSON has no comments',
  UnexpectedEndOfComment: 'JSON has no comments',
  UnexpectedEndOfString: 'a string is not closed',
  UnexpectedEndOfNumber: 'a number is cut short',
  InvalidUnicode: 'a bad \\u escape',
  InvalidEscapeCharacter: 'a bad escape in a string',
  InvalidCharacter: 'a control character inside a string (write it escaped)',
};

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: offset - start + 1 };
}

function jsonKind(node: JsonNode): ValueKind {
  if (node.type === 'object') return 'object';
  if (node.type === 'number') return Number.isInteger(node.value) ? 'integer' : 'float';
  return node.type as 'array' | 'string' | 'boolean' | 'null';
}

export function readJson(text: string): ReadOutcome {
  const errors: JsonParseError[] = [];
  const tree = parseTree(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  if (errors.length || !tree) {
    const first = errors[0];
    const at = lineAndColumn(text, first?.offset ?? 0);
    const code = first ? printParseErrorCode(first.error) : 'ValueExpected';
    return { ok: false, ...at, message: JSON_ERRORS[code] ?? code };
  }
  if (tree.type !== 'object') return { ok: false, line: lineAndColumn(text, tree.offset).line, column: 1, message: `the file must hold one JSON object, not ${a(jsonKind(tree))}` };
  const spots = new Map<string, Spot>();
  let duplicate: { line: number; column: number; message: string } | null = null;
  const visit = (path: KeyPath, node: JsonNode) => {
    if (node.type === 'object') {
      const seen = new Map<string, number>();
      for (const prop of node.children ?? []) {
        const [keyNode, valueNode] = prop.children ?? [];
        if (!keyNode || !valueNode) continue;
        const name = String(keyNode.value);
        const at = lineAndColumn(text, keyNode.offset);
        if (seen.has(name) && !duplicate) {
          duplicate = { ...at, message: `"${[...path, name].join('.')}" appears twice (lines ${seen.get(name)} and ${at.line})` };
        }
        seen.set(name, at.line);
        spots.set(JSON.stringify([...path, name]), { line: at.line, kind: jsonKind(valueNode) });
        visit([...path, name], valueNode);
      }
    } else if (node.type === 'array') {
      (node.children ?? []).forEach((el, i) => {
        spots.set(JSON.stringify([...path, i]), { line: lineAndColumn(text, el.offset).line, kind: jsonKind(el) });
        visit([...path, i], el);
      });
    }
  };
  visit([], tree);
  if (duplicate) return { ok: false, ...(duplicate as { line: number; column: number; message: string }) };
  return { ok: true, doc: docFrom(getNodeValue(tree) as Record<string, unknown>, spots) };
}

/** "a string", "an integer", "an object" */
export function a(kind: ValueKind): string {
  const word = kind === 'date' ? 'date or time' : kind;
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}
