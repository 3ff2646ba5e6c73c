// Shell completion for the command, generated from the same option tables that parse it:
// `eval "$(byol-align completion bash)"`; zsh loads the bash script through bashcompinit.
import type { CommandSpec } from './options.js';

export function completionScript(shell: 'bash' | 'zsh', commands: readonly CommandSpec[]): string {
  const cases = commands
    .map((c) => {
      const flags = Object.entries(c.options)
        .flatMap(([name, o]) => [`--${name}`, ...(o.short === undefined ? [] : [`-${o.short}`])])
        .concat('--help');
      return `    ${c.name}) opts="${flags.join(' ')}" ;;`;
    })
    .join('\n');
  const bash = `_byol_align() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${commands.map((c) => c.name).join(' ')} help --help --version" -- "$cur"))
    return
  fi
  local opts=""
  case "\${COMP_WORDS[1]}" in
${cases}
    help) opts="${commands.map((c) => c.name).join(' ')}" ;;
  esac
  if [[ "$cur" == -* || "\${COMP_WORDS[1]}" == help ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _byol_align byol-align
`;
  return shell === 'bash' ? bash : `autoload -U +X bashcompinit && bashcompinit\n${bash}`;
}
