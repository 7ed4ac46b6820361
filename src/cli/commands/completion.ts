/**
 * Shell completion. `qbh completion bash|zsh` prints a small script; the script asks
 * `qbh __complete -- WORDS… CURRENT` at each Tab, which prints the candidates one per line: command
 * words, a command's options (from its usage line), and live bridge, tap and link names (one
 * rtnetlink dump, only when a name is wanted). The shell never parses qbh's help, and the candidates
 * follow the installed qbh's commands.
 * @module
 */
import { listLinks } from '../../index.js';
import { output, type Command } from '../command.js';
import type { CliIo } from '../io.js';
import { UsageError } from '../errors.js';
import { GLOBAL_FLAGS, globalOptions, lookup, matchWord } from '../dispatch.js';

/** What a positional argument or an option's value names. */
type NameKind = 'bridge' | 'tap' | 'link' | 'file';

/** The positional arguments that name an existing interface, by command. */
const POSITIONALS: Record<string, NameKind[]> = {
  'bridge show': ['bridge'],
  'tap show': ['tap'],
  'acl check': ['bridge'],
  'bridge delete': ['bridge'],
  'bridge attach': ['bridge', 'link'],
  'bridge detach': ['link'],
  'tap delete': ['tap'],
};

/** Options whose value is an existing interface or a file (the shell completes files itself). */
const OPTION_VALUES: Record<string, NameKind> = {
  '--bridge': 'bridge',
  '--acl': 'file',
  '--tun': 'file',
  '--helper': 'file',
  '--socket': 'file',
  '--daemon-socket': 'file',
};

/** First words that are not commands' (`completion` is one: it is in the list). */
const EXTRA_TOP = ['help', '--version', '--help'];

/** A command's options, read from its usage line: `[--mtu N]` takes a value, `[--stp]` does not. */
export function usageOptions(usage: string): Map<string, boolean> {
  const opts = new Map<string, boolean>();
  for (const m of usage.matchAll(/(?<![\w-])(--?[a-z][a-z-]*)( [A-Z][A-Z_]*)?/g)) opts.set(m[1]!, m[2] !== undefined);
  opts.set('--help', false);
  return opts;
}

/** Interface names of a kind, from one dump; none when the dump fails (no netlink, a sandbox). */
async function liveNames(kind: Exclude<NameKind, 'file'>): Promise<string[]> {
  try {
    const links = await listLinks();
    return links
      .filter((l) => kind === 'link' || l.linkinfo?.info_kind === (kind === 'tap' ? 'tun' : 'bridge'))
      .map((l) => l.ifname)
      .sort();
  } catch {
    return [];
  }
}

/**
 * The candidates for the word `cur` after the complete words `words` (the words after `qbh`).
 * Prefix-filtered; empty when the shell should complete files (or there is nothing to offer).
 */
export async function completions(commands: Command[], words: string[], cur: string): Promise<string[]> {
  const all = await candidates(commands, words, cur);
  return [...new Set(all)].filter((c) => c.startsWith(cur));
}

async function candidates(commands: Command[], typed: string[], cur: string): Promise<string[]> {
  const names = commands.map((c) => c.name.split(' '));
  const firsts = [...new Set(names.map((n) => n[0]!))];
  // Words as the dispatcher reads them: options before the command (`-j`), prefixes (`br`), `ls`.
  const words = globalOptions(typed).rest;
  const seconds = (word: string | undefined) => names.filter((n) => n[0] === word && n.length > 1).map((n) => n[1]!);
  if (words.length === 0) return cur.startsWith('-') ? [...GLOBAL_FLAGS, '--version', '--help'] : [...firsts, ...EXTRA_TOP];
  if (words[0] === 'help') {
    const topic = words.slice(1);
    if (topic.length === 0) return firsts;
    return topic.length === 1 ? seconds(matchWord(topic[0]!, firsts).name) : [];
  }
  const first = matchWord(words[0]!, firsts).name;
  if (first === 'completion') return words.length === 1 ? ['bash', 'zsh'] : [];
  if (first === undefined) return [];
  if (words.length === 1 && !commands.some((c) => c.name === first)) return seconds(first);
  const { cmd, rest } = lookup(commands, words);
  if (!cmd) return [];
  const opts = usageOptions(cmd.usage);
  const prev = rest.at(-1);
  if (prev !== undefined && opts.get(prev) === true) {
    const kind = OPTION_VALUES[prev];
    return kind === undefined || kind === 'file' ? [] : liveNames(kind);
  }
  let position = 0;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i]!.startsWith('-')) {
      if (opts.get(rest[i]!) === true) i++;
    } else position++;
  }
  const kind = POSITIONALS[cmd.name]?.[position];
  if (cur.startsWith('-') || kind === undefined) return [...opts.keys()];
  return kind === 'file' ? [] : liveNames(kind);
}

/** The bash script: `source <(qbh completion bash)`. */
const BASH = `# bash completion for qbh: source <(qbh completion bash), or save it as
# ~/.local/share/bash-completion/completions/qbh (or /etc/bash_completion.d/qbh).
_qbh() {
  local cur=\${COMP_WORDS[COMP_CWORD]} IFS=$'\\n'
  COMPREPLY=($(command "\${COMP_WORDS[0]}" __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null))
}
complete -o default -F _qbh qbh
`;

/** The zsh script: `source <(qbh completion zsh)` after compinit, or as `_qbh` in a directory of $fpath. */
const ZSH = `#compdef qbh
# zsh completion for qbh: source <(qbh completion zsh) after compinit, or save it as _qbh in a
# directory of $fpath.
_qbh() {
  local -a reply
  reply=(\${(f)"$(command \${words[1]} __complete -- "\${(@)words[2,CURRENT-1]}" "\${words[CURRENT]}" 2>/dev/null)"})
  if (( \${#reply} )); then compadd -a reply; else _files; fi
}
if [[ \${funcstack[1]} == _qbh ]]; then _qbh "$@"; else compdef _qbh qbh; fi
`;

const SCRIPTS: Record<string, string> = { bash: BASH, zsh: ZSH };

const completionCommand: Command = {
  name: 'completion',
  summary: 'Print a shell completion script (commands, options, live bridge and tap names).',
  usage: 'qbh completion bash|zsh',
  options: `  bash   source <(qbh completion bash), or save it as
         ~/.local/share/bash-completion/completions/qbh
  zsh    source <(qbh completion zsh) after compinit, or save it as _qbh in $fpath

The script runs \`qbh __complete\` at each Tab: names come from the live system.`,
  async run(argv) {
    const shell = argv[0];
    if (argv.length !== 1 || shell === undefined || !(shell in SCRIPTS)) throw new UsageError(argv.length === 0 ? 'which shell? bash or zsh' : `no completion for "${argv.join(' ')}": bash or zsh`);
    return output(SCRIPTS[shell]!, false, (script) => script);
  },
};

/** `qbh __complete -- WORDS… CURRENT`: the candidates, one per line; always exit 0. */
export async function completeCommand(commands: Command[], argv: string[], io: CliIo): Promise<number> {
  const words = argv[0] === '--' ? argv.slice(1) : argv;
  const cur = words.at(-1) ?? '';
  const found = await completions(commands, words.slice(0, -1), cur);
  if (found.length) io.stdout.write(`${found.join('\n')}\n`);
  return 0;
}

export const completionCommands: Command[] = [completionCommand];
