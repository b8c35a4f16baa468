// `.cellhostignore`: a small subset of .gitignore. One glob per line; `#` comments; `*`, `?`, `**`
// and `[...]`; a trailing `/` matches directories only; a pattern with a `/` in it is anchored at
// the project root, one without matches a name at any depth; `!` re-includes (last match wins).

interface IgnoreRule {
  regex: RegExp;
  negate: boolean;
  dirOnly: boolean;
}

export type IgnoreMatcher = (relPath: string, isDir: boolean) => boolean;

function globToRegexSource(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const atStart = i === 0 || glob[i - 1] === '/';
        const atEnd = i + 2 === glob.length;
        if (atStart && glob[i + 2] === '/') {
          out += '(?:.*/)?'; // `**/` : any number of directories, including none
          i += 2;
          continue;
        }
        if (atStart && atEnd) {
          out += '.*';
          i += 1;
          continue;
        }
        out += '[^/]*'; // `**` elsewhere behaves like `*`, as in git
        i += 1;
        continue;
      }
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      out += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = close;
    } else if (c === '\\' && i + 1 < glob.length) {
      out += glob[i + 1].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      i += 1;
    } else {
      out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return out;
}

export function compileIgnoreRules(text: string): IgnoreMatcher {
  const rules: IgnoreRule[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    let line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1);
    const dirOnly = line.endsWith('/');
    line = line.replace(/\/+$/, '');
    if (line === '') continue;
    const anchored = line.includes('/');
    line = line.replace(/^\/+/, '');
    const body = globToRegexSource(line);
    // A match on a directory covers everything under it: the walker never descends into it.
    const regex = new RegExp(anchored ? `^${body}$` : `(?:^|/)${body}$`);
    rules.push({ regex, negate, dirOnly });
  }
  return (relPath, isDir) => {
    let ignored = false;
    for (const rule of rules) {
      if (rule.dirOnly && !isDir) continue;
      if (rule.regex.test(relPath)) ignored = !rule.negate;
    }
    return ignored;
  };
}
