// `cellhost completion bash|zsh`: the scripts are sourced in real shells and their completion
// functions called the way the shells call them (bash: COMP_WORDS/COMP_CWORD; zsh: words and
// CURRENT, with compadd and friends recording what they are given). Service names come from
// `cellhost services -q`: a stand-in `cellhost` on PATH answers it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, VERB_NAMES } from '../../../runtime/cli/index.ts';
import { tempDir } from '../../helpers/server.ts';

const missing = ['/bin/bash', '/usr/bin/zsh'].filter((p) => !fs.existsSync(p));
if (missing.length && process.env.CI === 'true') throw new Error(`the completion test needs ${missing.join(' and ')} (apt-get install bash zsh)`);

let dir: string;
let scripts: Record<'bash' | 'zsh', string>;

async function cli(args: string[]) {
  let out = '';
  let err = '';
  const code = await runCli(args, { env: {}, cwd: dir, out: (t) => void (out += t), err: (t) => void (err += t), isTTY: false });
  return { code, out, err };
}

beforeAll(async () => {
  dir = tempDir('cellhost-completion-');
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.mkdirSync(path.join(dir, 'work', 'myapp'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'work', 'prod.env'), 'A=1\n');
  // what `cellhost services -q` would print
  fs.writeFileSync(path.join(dir, 'bin', 'cellhost'), '#!/bin/sh\n[ "$1 $2" = "services -q" ] && printf "web\\napi\\n"\n', { mode: 0o755 });
  scripts = { bash: (await cli(['completion', 'bash'])).out, zsh: (await cli(['completion', 'zsh'])).out };
  fs.writeFileSync(path.join(dir, 'cellhost.bash'), scripts.bash);
  fs.writeFileSync(path.join(dir, 'cellhost.zsh'), scripts.zsh);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const quote = (w: string) => `'${w.replace(/'/g, `'\\''`)}'`;

/** what bash offers for the last of `words` */
function bashComplete(words: string[]): string[] {
  const script = `source ${quote(path.join(dir, 'cellhost.bash'))}
complete -p cellhost >/dev/null || exit 9
COMP_WORDS=(${words.map(quote).join(' ')}); COMP_CWORD=${words.length - 1}
_cellhost
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('/bin/bash', ['--norc', '--noprofile', '-c', script], { cwd: path.join(dir, 'work'), env: { PATH: `${dir}/bin:/usr/bin:/bin` }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bash exited ${r.status}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** what zsh's completion function hands to compadd, _describe and _files for the last of `words` */
function zshComplete(words: string[]): string[] {
  const script = `autoload -U compinit && compinit -u -D
source ${quote(path.join(dir, 'cellhost.zsh'))}
[[ $_comps[cellhost] == _cellhost ]] || exit 9
compadd() { local -a a; a=("$@"); while [[ $a[1] == -* ]]; do [[ $a[1] == -- ]] && { shift a; break }; [[ $a[1] == -S ]] && shift a; shift a; done; print -rl -- $a }
_describe() { print -rl -- \${(P)\${@[-1]}} }
_files() { print -r -- "<files $*>" }
words=(${words.map(quote).join(' ')}); CURRENT=${words.length}
_cellhost`;
  const r = spawnSync('/usr/bin/zsh', ['-f', '-c', script], { cwd: path.join(dir, 'work'), env: { PATH: `${dir}/bin:/usr/bin:/bin`, HOME: dir }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`zsh exited ${r.status}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).sort();
}

describe.skipIf(missing.length > 0)('shell completion', () => {
  it('bash: every verb of the table, and nothing else, at the first word', () => {
    expect(bashComplete(['cellhost', ''])).toEqual([...VERB_NAMES].sort());
    expect(bashComplete(['cellhost', 'de'])).toEqual(['delete', 'deploy', 'deployments']);
  });

  it('bash: subcommands, flags, flag choices, service names, settings, directories and files', () => {
    expect(bashComplete(['cellhost', 'env', ''])).toEqual(['import', 'ls', 'set', 'unset']);
    expect(bashComplete(['cellhost', 'tokens', ''])).toEqual(['create', 'ls', 'revoke']);
    expect(bashComplete(['cellhost', 'completion', ''])).toEqual(['bash', 'zsh']);
    expect(bashComplete(['cellhost', 'deploy', '--ru'])).toEqual(['--runtime']);
    expect(bashComplete(['cellhost', 'deploy', '--runtime', ''])).toEqual(['go', 'node', 'python', 'rust']);
    expect(bashComplete(['cellhost', 'deploy', '--runtime', 'node', ''])).toEqual(['myapp']);
    expect(bashComplete(['cellhost', 'status', ''])).toEqual(['api', 'web']);
    expect(bashComplete(['cellhost', 'logs', '--since', '1h', 'w'])).toEqual(['web']);
    expect(bashComplete(['cellhost', 'logs', 'web', '-'])).toEqual(['--help', '--json', '--since', '--until', '-f', '-q']);
    expect(bashComplete(['cellhost', 'env', 'ls', ''])).toEqual(['api', 'web']);
    expect(bashComplete(['cellhost', 'env', 'import', 'web', ''])).toEqual(['myapp', 'prod.env']);
    expect(bashComplete(['cellhost', 'set', 'web', 'memory=512', 'i'])).toEqual(['idle=']);
    expect(bashComplete(['cellhost', 'set', 'web', ''])).toContain('timeout=');
    expect(bashComplete(['cellhost', 'help', 'st'])).toEqual(['status']);
    // nothing sensible to offer: nothing offered
    expect(bashComplete(['cellhost', 'env', 'set', 'web', ''])).toEqual([]);
  });

  it('zsh: verbs with their summaries, and the same answers as bash', () => {
    const verbs = zshComplete(['cellhost', '']);
    expect(verbs.map((v) => v.split(':')[0]).sort()).toEqual([...VERB_NAMES].sort());
    expect(verbs).toContain("delete:delete a service");
    expect(zshComplete(['cellhost', 'env', ''])).toEqual(['import', 'ls', 'set', 'unset']);
    expect(zshComplete(['cellhost', 'deploy', '--runtime', ''])).toEqual(['go', 'node', 'python', 'rust']);
    expect(zshComplete(['cellhost', 'status', ''])).toEqual(['api', 'web']);
    expect(zshComplete(['cellhost', 'deploy', ''])).toEqual(['<files -/>']);
    expect(zshComplete(['cellhost', 'env', 'import', 'web', ''])).toEqual(['<files >']);
    expect(zshComplete(['cellhost', 'set', 'web', ''])).toContain('memory=');
  });

  it('each verb the completion offers is one the CLI dispatches, with the help the completion was read from', async () => {
    for (const verb of VERB_NAMES) {
      const r = await cli(['help', verb]);
      expect(r.code, verb).toBe(0);
      expect(r.out, verb).toMatch(new RegExp(`^cellhost ${verb}\\b`));
      expect(scripts.bash).toContain(`'${verb}`);
    }
    expect((await cli(['help'])).out).toMatch(/^Usage: cellhost/);
    const unknown = await cli(['help', 'frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('no verb "frobnicate"');
    expect((await cli(['completion', 'fish'])).code).toBe(2);
  });
});
