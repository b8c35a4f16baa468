// Terminal output (a build's pty stream) → HTML: SGR colours and weights become spans, every
// other escape sequence is dropped, and all text is HTML-escaped. Stateful, so a stream cut
// into arbitrary chunks renders the same as the whole text: a colour set in one chunk carries
// into the next, and an escape sequence split across chunks is held until it is complete.
//
// Lines are emitted whole: a bare carriage return (progress bars, spinners) rewrites the line,
// and only what the line holds when its newline arrives is shown.

interface Style {
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  /** 0–15 → a class; a string → an inline CSS colour (256-colour cube, truecolor) */
  fg: number | string | null;
  bg: number | string | null;
}

const MAX_ESCAPE = 512;

const PLAIN: Style = { bold: false, dim: false, italic: false, underline: false, fg: null, bg: null };

export interface AnsiConverter {
  /** HTML for the complete lines the text ends (each with its newline) */
  push(text: string): string;
  /** HTML for the partial last line, if any (end of stream) */
  flush(): string;
}

export function createAnsiConverter(): AnsiConverter {
  let style: Style = { ...PLAIN };
  /** an escape sequence cut by the chunk boundary */
  let pendingEscape = '';
  /** the current line as styled runs; rewritten by a bare \r */
  let line: { style: Style; text: string }[] = [];
  let carriageReturn = false;

  function addText(text: string): void {
    if (!text) return;
    if (carriageReturn) {
      line = [];
      carriageReturn = false;
    }
    const last = line[line.length - 1];
    if (last && sameStyle(last.style, style)) last.text += text;
    else line.push({ style: { ...style }, text });
  }

  function renderLine(): string {
    const html = line.map((run) => wrap(run.style, escapeHtml(run.text))).join('');
    line = [];
    carriageReturn = false;
    return html;
  }

  return {
    push(text) {
      let s = pendingEscape + text;
      pendingEscape = '';
      let out = '';
      let i = 0;
      let plainStart = 0;
      while (i < s.length) {
        const ch = s.charCodeAt(i);
        if (ch === 0x1b) {
          addText(s.slice(plainStart, i));
          let end = escapeEnd(s, i);
          // an unterminated sequence longer than any real one is junk: drop only the ESC
          if (end === -1 && s.length - i > MAX_ESCAPE) end = i + 1;
          if (end === -1) {
            pendingEscape = s.slice(i);
            s = '';
            plainStart = i = 0;
            break;
          }
          const seq = s.slice(i, end);
          if (seq[1] === '[' && seq.endsWith('m')) style = applySgr(style, seq.slice(2, -1));
          i = plainStart = end;
          continue;
        }
        if (ch === 0x0a) {
          addText(s.slice(plainStart, i));
          out += renderLine() + '\n';
          i = plainStart = i + 1;
          continue;
        }
        if (ch === 0x0d) {
          addText(s.slice(plainStart, i));
          // \r\n is a plain line end; a lone \r starts the line over once more text comes
          if (s.charCodeAt(i + 1) !== 0x0a) carriageReturn = true;
          i = plainStart = i + 1;
          continue;
        }
        if ((ch < 0x20 && ch !== 0x09) || ch === 0x7f) {
          // other control characters (bell, backspace, ...) have no place in HTML
          addText(s.slice(plainStart, i));
          i = plainStart = i + 1;
          continue;
        }
        i++;
      }
      addText(s.slice(plainStart));
      return out;
    },
    flush() {
      pendingEscape = '';
      return renderLine();
    },
  };
}

/** converts a whole text at once */
export function ansiToHtml(text: string): string {
  const c = createAnsiConverter();
  return c.push(text) + c.flush();
}

/** removes escape sequences, for places that show plain text */
export function stripAnsi(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.charCodeAt(i) === 0x1b) {
      const end = escapeEnd(text, i);
      i = end === -1 ? i + 1 : end;
      continue;
    }
    out += text[i];
    i++;
  }
  return out;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * index just past the escape sequence at `i`, or -1 when the text ends inside it.
 * CSI: ESC [ params intermediates final(0x40–0x7e); OSC: ESC ] ... BEL or ESC \;
 * anything else: ESC plus one character.
 */
function escapeEnd(s: string, i: number): number {
  if (i + 1 >= s.length) return -1;
  const kind = s[i + 1];
  if (kind === '[') {
    for (let j = i + 2; j < s.length; j++) {
      const c = s.charCodeAt(j);
      if (c >= 0x40 && c <= 0x7e) return j + 1;
      // a malformed sequence: drop the introducer, keep the rest as text
      if (c < 0x20 || c > 0x7e) return i + 2;
    }
    return -1;
  }
  if (kind === ']' || kind === 'P' || kind === '_' || kind === '^') {
    for (let j = i + 2; j < s.length; j++) {
      if (s.charCodeAt(j) === 0x07) return j + 1;
      if (s.charCodeAt(j) === 0x1b) {
        if (j + 1 >= s.length) return -1;
        if (s[j + 1] === '\\') return j + 2;
      }
    }
    return -1;
  }
  return i + 2;
}

function applySgr(current: Style, params: string): Style {
  // private or non-numeric parameters are not SGR (e.g. ESC[?25m does not exist in practice)
  if (/[^0-9;:]/.test(params)) return current;
  const codes = params === '' ? [0] : params.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
  const s = { ...current };
  for (let k = 0; k < codes.length; k++) {
    const n = codes[k]!;
    if (n === 0) Object.assign(s, PLAIN);
    else if (n === 1) s.bold = true;
    else if (n === 2) s.dim = true;
    else if (n === 3) s.italic = true;
    else if (n === 4) s.underline = true;
    else if (n === 22) s.bold = s.dim = false;
    else if (n === 23) s.italic = false;
    else if (n === 24) s.underline = false;
    else if (n >= 30 && n <= 37) s.fg = n - 30;
    else if (n >= 90 && n <= 97) s.fg = n - 90 + 8;
    else if (n === 39) s.fg = null;
    else if (n >= 40 && n <= 47) s.bg = n - 40;
    else if (n >= 100 && n <= 107) s.bg = n - 100 + 8;
    else if (n === 49) s.bg = null;
    else if (n === 38 || n === 48) {
      const mode = codes[k + 1];
      let colour: number | string | null = null;
      if (mode === 5 && k + 2 < codes.length) {
        colour = colour256(codes[k + 2]!);
        k += 2;
      } else if (mode === 2 && k + 4 < codes.length) {
        colour = hex(codes[k + 2]!, codes[k + 3]!, codes[k + 4]!);
        k += 4;
      } else {
        break;
      }
      if (n === 38) s.fg = colour;
      else s.bg = colour;
    }
    // blink, inverse, conceal, fonts: ignored
  }
  return s;
}

function colour256(n: number): number | string | null {
  if (!Number.isInteger(n) || n < 0 || n > 255) return null;
  if (n < 16) return n;
  if (n >= 232) {
    const g = 8 + (n - 232) * 10;
    return hex(g, g, g);
  }
  const i = n - 16;
  const level = (v: number) => (v === 0 ? 0 : 55 + v * 40);
  return hex(level(Math.floor(i / 36)), level(Math.floor(i / 6) % 6), level(i % 6));
}

function hex(r: number, g: number, b: number): string {
  const part = (v: number) => Math.max(0, Math.min(255, Math.round(v) || 0)).toString(16).padStart(2, '0');
  return `#${part(r)}${part(g)}${part(b)}`;
}

function sameStyle(a: Style, b: Style): boolean {
  return a.bold === b.bold && a.dim === b.dim && a.italic === b.italic && a.underline === b.underline && a.fg === b.fg && a.bg === b.bg;
}

function wrap(s: Style, html: string): string {
  const classes: string[] = [];
  const css: string[] = [];
  if (s.bold) classes.push('a-b');
  if (s.dim) classes.push('a-d');
  if (s.italic) classes.push('a-i');
  if (s.underline) classes.push('a-u');
  if (typeof s.fg === 'number') classes.push(`a-f${s.fg}`);
  else if (s.fg) css.push(`color:${s.fg}`);
  if (typeof s.bg === 'number') classes.push(`a-g${s.bg}`);
  else if (s.bg) css.push(`background-color:${s.bg}`);
  if (!classes.length && !css.length) return html;
  return `<span${classes.length ? ` class="${classes.join(' ')}"` : ''}${css.length ? ` style="${css.join(';')}"` : ''}>${html}</span>`;
}
