// Which builds get a system layer, and what a failed build's output says about why it failed.
//
// A build gets a layer when its build command runs apt-get, apt, aptitude or dpkg itself, as a
// Dockerfile's `RUN apt-get install ...` would: the rest build as today (the service's uid, the
// host's system read-only) and their deployments run as today, at today's cold-start cost.

/** the package tools that need a writable system and root */
const PACKAGE_TOOLS = /(^|[\s;&|(`!{}]|\$\()(?:sudo\s+(?:-\S+\s+)*)?(apt-get|apt|aptitude|dpkg)(?=\s|$|;|&|\|)/m;

/** true when the build command runs a package tool (not inside a word: "apt" in "zaptest" does not count) */
export function usesSystemPackages(buildCommand: string | null | undefined): boolean {
  if (!buildCommand) return false;
  // comments do not run
  const code = buildCommand
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, ''))
    .join('\n');
  return PACKAGE_TOOLS.test(code);
}

const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]/g;

const clip = (s: string) => (s.length > 300 ? s.slice(0, 297) + '...' : s);

/**
 * Why a failed build failed, in its own words: apt's last error line ("E: Unable to locate
 * package x"), else dpkg's ("dpkg: error processing package x (--install):" and the line after,
 * which names the failed maintainer script), else the last line it printed. Colours, progress
 * redraws and blank lines are left out.
 */
export function failureLine(tail: string): string | null {
  const lines = tail
    .replace(ANSI, '')
    .split(/\r?\n/)
    // a progress line redrawn with \r: what shows is its last part
    .map((l) => (l.split('\r').filter((p) => p.trim()).pop() ?? '').trim())
    .filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) if (lines[i]!.startsWith('E: ')) return clip(lines[i]!);
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i]!.startsWith('dpkg: error')) return clip([lines[i], lines[i + 1]].filter(Boolean).join(' '));
  }
  const last = lines.pop();
  return last ? clip(last) : null;
}

/**
 * apt's own words for "the mirror cannot be reached" in a failed build's output, as a sentence
 * for the error; null when the output does not say that.
 */
export function aptNetworkFailure(tail: string): string | null {
  const text = tail.replace(ANSI, '');
  const m = /(Could not connect to [^\r\n]*|Temporary failure resolving [^\r\n]*|Could not resolve [^\r\n]*|Unable to connect to [^\r\n]*|Connection timed out[^\r\n]*|Network is unreachable[^\r\n]*)/.exec(text);
  if (!m) return null;
  return `apt could not reach the package mirror from the build's network (${m[1]!.trim().replace(/\s+/g, ' ').slice(0, 200)})`;
}

/** keeps the last `max` characters of a stream */
export function createTail(max = 16 * 1024): { push(text: string): void; text(): string } {
  let buf = '';
  return {
    push(text) {
      buf = (buf + text).slice(-max);
    },
    text: () => buf,
  };
}
