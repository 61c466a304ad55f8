package cli

import (
	"fmt"
	"strings"
)

// CompleteCommand is the hidden command the completion scripts call: `PROGRAM __complete
// WORD...` prints the candidates for the last word (the one being completed, possibly
// empty), one per line. No candidate lets the shell complete file names.
const CompleteCommand = "__complete"

// Shells are the shells Script writes completion for.
var Shells = []string{"bash", "zsh", "fish"}

// Complete returns the candidates for the last of args, the words after the command's
// name: flag names for a word that starts with '-', a flag's values (Enum) after it or
// after its '=', nothing where the shell should complete file names.
func (fs *FlagSet) Complete(args []string) []string {
	if len(args) == 0 {
		args = []string{""}
	}
	cur, before := args[len(args)-1], args[:len(args)-1]
	if strings.HasPrefix(cur, "-") {
		name, val, hasValue := strings.Cut(strings.TrimLeft(cur, "-"), "=")
		if hasValue {
			var out []string
			for _, v := range Filter(fs.enums[name], val) {
				out = append(out, "--"+name+"="+v)
			}
			return out
		}
		var out []string
		for _, n := range fs.Names() {
			if strings.HasPrefix("--"+n, cur) {
				out = append(out, "--"+n)
			}
		}
		return out
	}
	if len(before) > 0 {
		prev := before[len(before)-1]
		if strings.HasPrefix(prev, "-") && prev != "--" && !strings.Contains(prev, "=") {
			if f := fs.Lookup(strings.TrimLeft(prev, "-")); f != nil && kindOf(f) != "bool" {
				return Filter(fs.enums[f.Name], cur)
			}
		}
	}
	return nil
}

// Filter returns the candidates that start with prefix.
func Filter(candidates []string, prefix string) []string {
	var out []string
	for _, c := range candidates {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// Script returns the completion script of program for shell (bash, zsh or fish). Each
// script asks the program for candidates (CompleteCommand) and falls back to file names
// when there are none.
func Script(program, shell string) (string, error) {
	var s string
	switch shell {
	case "bash":
		s = bashScript
	case "zsh":
		s = zshScript
	case "fish":
		s = fishScript
	default:
		return "", &UsageError{Msg: fmt.Sprintf("shell %q: want %s", shell, orList(Shells))}
	}
	return strings.NewReplacer("PROGRAM", program, "COMPLETE", CompleteCommand).Replace(s), nil
}

// bashScript reads the words from COMP_LINE, so that --flag=value stays one word whatever
// COMP_WORDBREAKS holds, and strips the "--flag=" bash does not replace.
const bashScript = `# bash completion for PROGRAM.
#   source <(PROGRAM completion bash)       in ~/.bashrc, or
#   PROGRAM completion bash > /etc/bash_completion.d/PROGRAM
_PROGRAM_complete() {
    local line=${COMP_LINE:0:COMP_POINT}
    local -a words
    read -ra words <<< "$line"
    if [[ -z $line || $line == *[[:space:]] ]]; then
        words+=("")
    fi
    local cur=${words[${#words[@]}-1]}
    local IFS=$'\n'
    local -a out
    out=($("${words[0]}" COMPLETE "${words[@]:1}" 2>/dev/null))
    if [[ $cur == *=* && $COMP_WORDBREAKS == *=* ]]; then
        out=("${out[@]#*=}")
    fi
    COMPREPLY=("${out[@]}")
}
complete -o default -F _PROGRAM_complete PROGRAM
`

const zshScript = `#compdef PROGRAM
# zsh completion for PROGRAM.
#   source <(PROGRAM completion zsh)        in ~/.zshrc (after compinit), or
#   PROGRAM completion zsh > "${fpath[1]}/_PROGRAM"
_PROGRAM() {
  local -a out
  out=("${(@f)$(${words[1]} COMPLETE "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  out=(${out:#})
  if (( ${#out} )); then
    compadd -Q -- "${out[@]}"
  else
    _files
  fi
}
if [[ ${funcstack[1]} == _PROGRAM ]]; then
  _PROGRAM "$@"
else
  compdef _PROGRAM PROGRAM
fi
`

const fishScript = `# fish completion for PROGRAM.
#   PROGRAM completion fish | source        in ~/.config/fish/config.fish, or
#   PROGRAM completion fish > ~/.config/fish/completions/PROGRAM.fish
function __PROGRAM_complete
    set -l words (commandline -opc)
    set -l prog $words[1]
    set -e words[1]
    set -l cur (commandline -ct)
    set -l out ($prog COMPLETE $words "$cur" 2>/dev/null)
    if test (count $out) -eq 0
        __fish_complete_path "$cur"
        return
    end
    printf '%s\n' $out
end
complete -c PROGRAM -f -a '(__PROGRAM_complete)'
`
