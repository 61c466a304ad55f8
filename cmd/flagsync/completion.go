package main

import (
	"context"
	"fmt"

	"github.com/flagsync/flagsync/internal/cli"
)

const completionSynopsis = `Usage: flagsync completion bash|zsh|fish

Prints the shell completion script: commands, flags and their values (--format, --vendor,
--log-format …), and file names where a flag takes a path.

  bash:  source <(flagsync completion bash)              in ~/.bashrc
  zsh:   source <(flagsync completion zsh)               in ~/.zshrc, after compinit
         (or: flagsync completion zsh > "${fpath[1]}/_flagsync")
  fish:  flagsync completion fish > ~/.config/fish/completions/flagsync.fish

Examples:
  flagsync completion bash > /etc/bash_completion.d/flagsync
  flagsync completion zsh > "${fpath[1]}/_flagsync"`

func cmdCompletion(_ context.Context, a *app, args []string) int {
	fs := a.newFlagSet("completion", completionSynopsis)
	if code := a.parseArgs(fs, args, 1); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(a.stderr, "flagsync completion: give one shell: bash, zsh or fish\n%s\n", fs.HelpHint())
		return exitUsage
	}
	script, err := cli.Script("flagsync", fs.Arg(0))
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync completion: %v\n", err)
		return exitUsage
	}
	fmt.Fprint(a.stdout, script)
	return exitOK
}
