package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "regenerate docs/cli.md from the commands' help")

// cliPreface is docs/cli.md's text before the commands' help.
const cliPreface = `# Command reference

<!-- Generated from the commands' help by ` + "`go test ./cmd/flagsync -run TestCLIReference -update-docs`" + `; do not edit by hand. -->

Each section below is what ` + "`flagsync <command> -h`" + ` (the same as ` + "`flagsync help <command>`" + `)
prints, byte for byte: a test compares this file with the binary's help. Defaults that
depend on the machine are shown as the rule that computes them (` + "`$XDG_CACHE_HOME/flagsync`" + `),
so the help reads the same everywhere.

## Conventions

- **Flags** are written ` + "`--name value`" + ` or ` + "`--name=value`" + ` (one dash works too). A mistyped
  flag or command is one line with the closest match and a pointer to ` + "`-h`" + `; usage errors
  exit 64.
- **Environment variables.** Every flag has one environment variable, named on its help
  line, and the same in every command: ` + "`FLAGSYNC_`" + ` and the flag's name in capitals with ` + "`-`" + `
  as ` + "`_`" + ` (` + "`--max-changes`" + ` is ` + "`FLAGSYNC_MAX_CHANGES`" + `). The command line wins over the
  variable. Exceptions, each named in the help: a vendor's own documented variable
  (` + "`KAMELEOON_API_URL`" + `, ` + "`SPLIT_API_URL`" + `), read only where the flag applies; Git's settings,
  which keep the ` + "`FLAGSYNC_GIT_`" + ` prefix of Git's credentials (` + "`--depth`" + ` is ` + "`FLAGSYNC_GIT_DEPTH`" + `);
  ` + "`--no-color`" + `, which is ` + "`NO_COLOR`" + `; and the two commands that configure something else
  than a sync: ` + "`flagsync sandbox`" + `'s flags are ` + "`FLAGSYNC_SANDBOX_*`" + ` (the sandbox is a server of
  its own: its ` + "`--listen`" + ` and ` + "`--rate-10s`" + ` are not the daemon's) and ` + "`flagsync comment`" + `'s are
  ` + "`FLAGSYNC_COMMENT_*`" + ` (its ` + "`--api-url`" + ` is the Git host's), except the flags they share in
  meaning with the others (` + "`--path`" + `, the log flags). A variable applies to every command
  that has the flag, so set ` + "`FLAGSYNC_FORMAT`" + ` or ` + "`FLAGSYNC_OUT`" + ` only for a command that means
  the same by it. Secrets are read only from the environment, or from the file named by the
  variable + ` + "`_FILE`" + `.
- **Output.** Results go to stdout, logs to stderr. Logs are text (` + "`key=value`" + `) unless
  ` + "`--log-format json`" + ` (the container image and the Kubernetes manifests set
  ` + "`FLAGSYNC_LOG_FORMAT=json`" + `); info logs are shown, also when the output is redirected, except
  that ` + "`plan`" + `, ` + "`sync`" + ` and ` + "`doctor`" + ` default to warn when stdout and stderr are both a terminal
  (the plan on the screen already says what info logs would).
- **Colour.** The text plan is in colour only when stdout is a terminal; ` + "`--no-color`" + `,
  ` + "`NO_COLOR`" + ` set to anything (https://no-color.org) or ` + "`TERM=dumb`" + ` turn every escape code off.
- **Completion**: ` + "`flagsync completion bash|zsh|fish`" + ` completes commands, flags and their values
  (` + "`--format`" + `, ` + "`--vendor`" + `, ` + "`--log-format`" + `, ` + "`schema`" + `'s names).
- **Contracts.** ` + "`plan --format json`" + ` and ` + "`validate --format json`" + ` carry a ` + "`format_version`" + ` and
  are described by JSON Schemas (` + "`flagsync schema plan`" + `, ` + "`flagsync schema validate-report`" + `,
  schema/*.schema.json), as the flag files are (` + "`flagsync schema flag --vendor NAME`" + `).

The command line is built on Go's standard ` + "`flag`" + ` package with small helpers
(internal/cli): one environment variable per flag, values, help, suggestions and completion
are each a few dozen lines there, and the commands, their ` + "`-flag`" + `/` + "`--flag`" + ` spelling and this
reference did not have to change shape for a library (cobra would bring pflag's different
parsing to every command and script; ff binds variables by a fixed prefix only).

## flagsync

` + "```text\n"

// TestCLIReferenceUpToDate keeps docs/cli.md equal to what the binary prints for
// `flagsync -h` and each `flagsync <command> -h`, byte for byte.
// Regenerate with `go test ./cmd/flagsync -run TestCLIReference -update-docs`.
func TestCLIReferenceUpToDate(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(cliPreface)
	var top bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &top, &top); code != exitOK {
		t.Fatalf("flagsync -h: exit %d", code)
	}
	b.Write(top.Bytes())
	fmt.Fprintln(&b, "```")
	for _, n := range commandNames() {
		fmt.Fprintf(&b, "\n## flagsync %s\n\n```text\n%s```\n", n, helpText(t, n))
	}
	path := filepath.Join("..", "..", "docs", "cli.md")
	if *updateDocs {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with -update-docs)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Error("docs/cli.md is out of date with the commands: run `go test ./cmd/flagsync -run TestCLIReference -update-docs`")
	}
}

// TestHelpIsTheSameOnEveryMachine: the help, and so docs/cli.md, does not change with
// the environment — not with HOME or XDG_CACHE_HOME (the cache-dir and known-hosts
// defaults once did), nor with a variable that sets a flag.
func TestHelpIsTheSameOnEveryMachine(t *testing.T) {
	envs := []map[string]string{
		{},
		{"HOME": "/home/someone", "XDG_CACHE_HOME": "/var/cache/x", "FLAGSYNC_FORMAT": "json", "FLAGSYNC_LOG_FORMAT": "json",
			"FLAGSYNC_LOG_LEVEL": "debug", "FLAGSYNC_CACHE_DIR": "/c", "NO_COLOR": "1", "FLAGSYNC_SANDBOX_LISTEN": "127.0.0.1:1"},
	}
	for _, n := range commandNames() {
		var first string
		for i, env := range envs {
			var out bytes.Buffer
			a := &app{stdout: &out, stderr: &out, getenv: func(k string) string { return env[k] }, outTTY: i == 1, errTTY: i == 1}
			if code := a.dispatch(context.Background(), []string{n, "-h"}); code != exitOK {
				t.Fatalf("flagsync %s -h: exit %d", n, code)
			}
			if i == 0 {
				first = out.String()
			} else if out.String() != first {
				t.Errorf("flagsync %s -h depends on the environment:\n%s\n---\n%s", n, first, out.String())
			}
		}
	}
}
