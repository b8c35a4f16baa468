import { describe, expect, it } from 'vitest';
import { ansiToHtml, createAnsiConverter, escapeHtml, stripAnsi } from '../../../ui/ansi.ts';

describe('ansiToHtml', () => {
  it('escapes HTML in plain text', () => {
    expect(ansiToHtml(`<script>alert("x")</script> & 'y'`)).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;');
  });

  it('renders the 16 colours, bold and reset as classes', () => {
    expect(ansiToHtml('\x1b[1;36m==>\x1b[0m Fetching')).toBe('<span class="a-b a-f6">==&gt;</span> Fetching');
    expect(ansiToHtml('\x1b[31mred\x1b[39m plain \x1b[92mbright\x1b[m')).toBe('<span class="a-f1">red</span> plain <span class="a-f10">bright</span>');
    expect(ansiToHtml('\x1b[44;1mx\x1b[22my\x1b[49mz')).toBe('<span class="a-b a-g4">x</span><span class="a-g4">y</span>z');
    expect(ansiToHtml('\x1b[2;3;4mq\x1b[23;24mr')).toBe('<span class="a-d a-i a-u">q</span><span class="a-d">r</span>');
  });

  it('renders 256-colour and truecolor as inline colours', () => {
    expect(ansiToHtml('\x1b[38;5;9ma')).toBe('<span class="a-f9">a</span>');
    expect(ansiToHtml('\x1b[38;5;196ma')).toBe('<span style="color:#ff0000">a</span>');
    expect(ansiToHtml('\x1b[38;5;244ma')).toBe('<span style="color:#808080">a</span>');
    expect(ansiToHtml('\x1b[48;2;10;20;300ma')).toBe('<span style="background-color:#0a14ff">a</span>');
  });

  it('drops cursor, erase and OSC sequences and control characters', () => {
    expect(ansiToHtml('\x1b[?25l\x1b[2Kdone\x1b[1G\x1b[0K\x07!')).toBe('done!');
    expect(ansiToHtml('\x1b]8;;https://x.example\x1b\\link\x1b]8;;\x07 text')).toBe('link text');
    expect(ansiToHtml('tab\there\bX')).toBe('tab\thereX');
  });

  it('keeps the last state of a line rewritten with a bare carriage return', () => {
    expect(ansiToHtml('progress 10%\rprogress 90%\rdone\r\nnext\n')).toBe('done\nnext\n');
  });

  it('does not let a malformed or unterminated sequence swallow the text', () => {
    expect(ansiToHtml('a\x1b[\x01b')).toBe('ab');
    const long = 'x'.repeat(1000);
    expect(ansiToHtml('\x1b]0;' + long)).toContain('x'.repeat(900));
  });

  it('renders a stream cut anywhere the same as the whole text', () => {
    const text = 'a\x1b[1;31mred bold\x1b[0m\r\nline <2> \x1b[38;5;33mblue\x1b[0m\rover\n\x1b]0;title\x07end\n';
    const whole = ansiToHtml(text);
    for (let cut = 1; cut < text.length; cut++) {
      const c = createAnsiConverter();
      const html = c.push(text.slice(0, cut)) + c.push(text.slice(cut)) + c.flush();
      expect(stripTags(html), `cut at ${cut}`).toBe(stripTags(whole));
    }
    // one character at a time
    const c = createAnsiConverter();
    let html = '';
    for (const ch of text) html += c.push(ch);
    expect(stripTags(html + c.flush())).toBe(stripTags(whole));
  });

  it('emits whole lines, each chunk balanced, with styles carried over', () => {
    const c = createAnsiConverter();
    expect(c.push('\x1b[32mgreen st')).toBe('');
    expect(c.push('ill\ntoo\x1b[0m\nplain')).toBe('<span class="a-f2">green still</span>\n<span class="a-f2">too</span>\n');
    expect(c.flush()).toBe('plain');
  });
});

describe('stripAnsi and escapeHtml', () => {
  it('strips escape sequences and keeps the text', () => {
    expect(stripAnsi('\x1b[1;36m==>\x1b[0m ok \x1b]0;t\x07x')).toBe('==> ok x');
  });
  it('escapes the five HTML specials', () => {
    expect(escapeHtml(`<>&"'`)).toBe('&lt;&gt;&amp;&quot;&#39;');
  });
});

function stripTags(html: string): string {
  // compares the visible text and the style of every character, whatever the span boundaries
  const out: string[] = [];
  let cls = '';
  for (const part of html.split(/(<span[^>]*>|<\/span>)/)) {
    if (part.startsWith('<span')) cls = part;
    else if (part === '</span>') cls = '';
    else for (const ch of part) out.push(`${cls}|${ch}`);
  }
  return out.join('\n');
}
