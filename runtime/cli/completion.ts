// Shell completion for bash and zsh, generated from the verb table that dispatches: the verbs,
// their subcommands, flags and arguments are read from each verb's help text, so a verb, flag
// or subcommand added to the table is completed without anything else to keep in step.
//
// What is read from a help text: every line `cellhost VERB ...` is a usage line. After the
// verb, a lowercase word (or words joined by |) is a subcommand; `--flag` (or `-f`) is a flag,
// which takes a value when an UPPERCASE placeholder, a|b choices or a number follows it; an
// UPPERCASE word is an argument (NAME: a service, DIR: a directory, FILE...: a file), `key=VALUE`
// is a setting offered as `key=`, and `...` repeats the argument before it.

export interface VerbDoc {
  name: string;
  summary: string;
  help: string;
}

type ArgKind = 'service' | 'dir' | 'file' | 'verbs' | 'other' | { words: string[] };

interface FlagSpec {
  name: string;
  /** null: a switch; otherwise what its value is */
  value: ArgKind | null;
}

interface UsageSpec {
  /** "verb" or "verb sub" */
  key: string;
  flags: FlagSpec[];
  args: ArgKind[];
  /** the last argument repeats */
  repeats: boolean;
}

interface CompletionSpec {
  verbs: { name: string; summary: string; subs: string[] }[];
  usages: UsageSpec[];
}

const PLACEHOLDER = /^[A-Z][A-Z0-9_.:-]*$/;
const CHOICES = /^[a-z0-9][a-z0-9.-]*(\|[a-z0-9][a-z0-9.-]*)+$/;
const WORD = /^[a-z][a-z0-9-]*$/;

function argKind(token: string): ArgKind {
  if (token === 'NAME') return 'service';
  if (token === 'DIR') return 'dir';
  if (token === 'VERB') return 'verbs';
  if (token.startsWith('FILE')) return 'file';
  if (CHOICES.test(token)) return { words: token.split('|') };
  return 'other';
}

/** the tokens of a usage line after `cellhost VERB` (or of a line continuing one) */
function parseUsage(verb: string, tokens: string[], continued: boolean): UsageSpec & { subs: string[] } {
  const spec: UsageSpec & { subs: string[] } = { key: verb, flags: [], args: [], repeats: false, subs: [] };
  const settings: string[] = [];
  const words = tokens.map((t) => ({ optional: t.startsWith('['), w: t.replace(/[[\]]/g, '') })).filter((t) => t.w !== '' && t.w !== '|');
  for (let i = 0; i < words.length; i++) {
    const { w, optional } = words[i]!;
    if (i === 0 && !continued && !optional && (WORD.test(w) || CHOICES.test(w))) {
      spec.subs = w.split('|');
      if (spec.subs.length === 1) spec.key = `${verb} ${w}`;
      continue;
    }
    if (w === '...') {
      spec.repeats = true;
      continue;
    }
    if (/^--?[a-zA-Z]/.test(w)) {
      const next = words[i + 1]?.w;
      const takesValue = next !== undefined && !next.startsWith('-') && next !== '...' && (PLACEHOLDER.test(next) || CHOICES.test(next) || /^\d/.test(next));
      for (const name of w.split('|')) spec.flags.push({ name, value: takesValue ? argKind(next!) : null });
      if (takesValue) i++;
      continue;
    }
    const setting = /^([a-z][a-zA-Z]*)=/.exec(w);
    if (setting) {
      settings.push(`${setting[1]}=`);
      continue;
    }
    if (w.startsWith('FILE') || PLACEHOLDER.test(w.replace(/=.*$/, ''))) spec.args.push(argKind(w));
  }
  if (settings.length) {
    spec.args.push({ words: settings });
    spec.repeats = true;
  }
  return spec;
}

export function buildCompletionSpec(verbs: VerbDoc[]): CompletionSpec {
  const spec: CompletionSpec = { verbs: [], usages: [] };
  for (const v of verbs) {
    const subs: string[] = [];
    const head = `cellhost ${v.name}`;
    let current: UsageSpec[] = [];
    for (const raw of v.help.split('\n')) {
      const line = raw.trim();
      if (line === head || line.startsWith(head + ' ')) {
        const u = parseUsage(v.name, line.split(/\s+/).slice(2), false);
        for (const s of u.subs) if (!subs.includes(s)) subs.push(s);
        // `cellhost completion bash|zsh`: each choice is a subcommand of its own
        current = u.subs.length > 1 ? u.subs.map((s) => ({ key: `${v.name} ${s}`, flags: [...u.flags], args: [...u.args], repeats: u.repeats })) : [u];
        spec.usages.push(...current);
      } else if (current.length && /^\s+\[/.test(raw)) {
        // a usage line continued on the next, indented: more flags and settings for it
        const more = parseUsage(v.name, line.split(/\s+/), true);
        for (const u of current) {
          u.flags.push(...more.flags);
          const extra = more.args.find((a): a is { words: string[] } => typeof a === 'object');
          const mine = u.args.find((a): a is { words: string[] } => typeof a === 'object');
          if (extra && mine) mine.words.push(...extra.words);
          else if (extra) {
            u.args.push({ words: [...extra.words] });
            u.repeats = true;
          }
        }
      } else {
        current = [];
      }
    }
    spec.verbs.push({ name: v.name, summary: v.summary, subs });
  }
  for (const u of spec.usages) if (!u.flags.some((f) => f.name === '--help')) u.flags.push({ name: '--help', value: null });
  return spec;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

const kindText = (a: ArgKind) => (typeof a === 'object' ? `words:${a.words.join(' ')}` : a);

/** the cases both shells share: each usage's flags, what a flag's value is, what an argument position is */
function shellCases(spec: CompletionSpec, indent: string) {
  const flagValues: string[] = [];
  const flagLists: string[] = [];
  const argCases: string[] = [];
  for (const u of spec.usages) {
    flagLists.push(`${indent}${q(u.key)}) echo ${q(u.flags.map((f) => f.name).join(' '))} ;;`);
    for (const f of u.flags) if (f.value !== null) flagValues.push(`${indent}${q(`${u.key}|${f.name}`)}) echo ${q(kindText(f.value))} ;;`);
    u.args.forEach((a, i) => argCases.push(`${indent}${q(`${u.key}|${i}`)}) echo ${q(kindText(a))} ;;`));
    if (u.repeats && u.args.length) argCases.push(`${indent}${q(`${u.key}|`)}*) echo ${q(kindText(u.args.at(-1)!))} ;;`);
  }
  return { flagValues, flagLists, argCases };
}

function sharedFunctions(spec: CompletionSpec): string {
  const c = shellCases(spec, '    ');
  const withSubs = spec.verbs.filter((v) => v.subs.length);
  return `# what completes each word: "service", "dir", "file", "words:a b c" or nothing
_cellhost_flags() {
  case "$1" in
${c.flagLists.join('\n')}
  esac
}
_cellhost_flag_value() {
  case "$1|$2" in
${c.flagValues.join('\n')}
  esac
}
_cellhost_arg() {
  case "$1|$2" in
${c.argCases.join('\n')}
  esac
}
_cellhost_subs() {
  case "$1" in
${withSubs.map((v) => `    ${q(v.name)}) echo ${q(v.subs.join(' '))} ;;`).join('\n')}
  esac
}
_cellhost_services() {
  command cellhost services -q 2>/dev/null
}
# the completion for the word at index $2 of the words "$3"...: prints the kind of candidates
_cellhost_kind() {
  [[ -n "$ZSH_VERSION" ]] && setopt localoptions ksharrays
  local cword=$1; shift
  local -a w; w=("$@")
  if (( cword == 1 )); then echo "verbs"; return; fi
  local verb="\${w[1]}" key="\${w[1]}" first=2 subs
  subs=$(_cellhost_subs "$verb")
  if [[ -n "$subs" ]]; then
    if (( cword == 2 )); then echo "words:$subs"; return; fi
    key="$verb \${w[2]}"; first=3
  fi
  local prev="\${w[cword-1]}" cur="\${w[cword]}"
  if [[ "$prev" == -* ]]; then
    local value; value=$(_cellhost_flag_value "$key" "$prev")
    if [[ -n "$value" ]]; then echo "$value"; return; fi
  fi
  if [[ "$cur" == -* ]]; then echo "words:$(_cellhost_flags "$key")"; return; fi
  local i n=0
  for (( i = first; i < cword; i++ )); do
    if [[ "\${w[i]}" == -* ]]; then
      [[ -n "$(_cellhost_flag_value "$key" "\${w[i]}")" ]] && (( i++ ))
      continue
    fi
    (( n++ ))
  done
  _cellhost_arg "$key" "$n"
}`;
}

export function bashCompletion(verbs: VerbDoc[]): string {
  const spec = buildCompletionSpec(verbs);
  return `# bash completion for cellhost, generated by "cellhost completion bash" from its verb table.
# Load it with: source <(cellhost completion bash)   or save it as /etc/bash_completion.d/cellhost
${sharedFunctions(spec)}
_cellhost() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" kind
  kind=$(_cellhost_kind "$COMP_CWORD" "\${COMP_WORDS[@]}")
  COMPREPLY=()
  case "$kind" in
    verbs) COMPREPLY=($(compgen -W ${q(spec.verbs.map((v) => v.name).join(' '))} -- "$cur")) ;;
    service) COMPREPLY=($(compgen -W "$(_cellhost_services)" -- "$cur")) ;;
    dir) COMPREPLY=($(compgen -d -- "$cur")) ;;
    file) COMPREPLY=($(compgen -f -- "$cur")) ;;
    words:*)
      COMPREPLY=($(compgen -W "\${kind#words:}" -- "$cur"))
      if [[ \${#COMPREPLY[@]} -eq 1 && "\${COMPREPLY[0]}" == *= ]]; then compopt -o nospace 2>/dev/null; fi
      ;;
  esac
  return 0
}
complete -F _cellhost cellhost
`;
}

export function zshCompletion(verbs: VerbDoc[]): string {
  const spec = buildCompletionSpec(verbs);
  const described = spec.verbs.map((v) => `${v.name}:${v.summary}`);
  return `#compdef cellhost
# zsh completion for cellhost, generated by "cellhost completion zsh" from its verb table.
# Load it with: source <(cellhost completion zsh)   (after compinit), or save it as _cellhost in a
# directory on $fpath.
${sharedFunctions(spec)}
_cellhost() {
  local kind cur="\${words[CURRENT]}"
  # zsh counts words from 1: shift to the shell-neutral 0-based view
  kind=$(_cellhost_kind $(( CURRENT - 1 )) "\${words[@]}")
  case "$kind" in
    verbs)
      local -a verbs
      verbs=(${described.map(q).join(' ')})
      _describe -t verbs 'cellhost verb' verbs ;;
    service) compadd -- \${(f)"$(_cellhost_services)"} ;;
    dir) _files -/ ;;
    file) _files ;;
    words:*)
      local -a choices plain settings
      choices=(\${=kind#words:})
      settings=(\${(M)choices:#*=})
      plain=(\${choices:#*=})
      (( \${#plain} )) && compadd -- $plain
      (( \${#settings} )) && compadd -S '' -- $settings ;;
  esac
  return 0
}
if [[ "\${funcstack[1]}" == _cellhost ]]; then _cellhost "$@"; else compdef _cellhost cellhost; fi
`;
}
