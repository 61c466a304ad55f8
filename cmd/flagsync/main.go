// Command flagsync keeps feature flags in step with YAML files in Git, for every flag
// service internal/provider/builtin registers.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/flagsync/flagsync/internal/cli"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/provider/builtin"
)

// Exit codes shared by every command.
const (
	exitOK      = 0
	exitFail    = 1  // invalid input, failed change, or any runtime error
	exitChanges = 2  // plan --detailed-exitcode: the plan has changes
	exitUsage   = 64 // bad command line (sysexits EX_USAGE)
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// app is what commands get from the process: output streams, the environment and the
// flag services, so tests can run any command in-process.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	outTTY         bool               // stdout is a terminal: the plan in colour
	errTTY         bool               // stderr is a terminal
	providers      *provider.Registry // the flag services (builtin.Registry() when nil)

	// noColor is --no-color (or NO_COLOR): no escape code on any stream.
	noColor bool
	// quiet: the command's plan or report on a terminal says what info logs would
	// (quietOnTerminal).
	quiet bool
	// inspect, when set, is given each command's flag set instead of parsing: the
	// command stops there (completion, the reference and the tests read the flags).
	inspect func(fs *cli.FlagSet)
}

type command struct {
	summary string
	run     func(ctx context.Context, a *app, args []string) int
	// args are the values of the command's arguments, for completion.
	args func(a *app) []string
}

var commands = map[string]command{
	"validate":    {summary: "check flag files against the schema and the semantic rules", run: cmdValidate},
	"plan":        {summary: "show the changes a sync would make", run: cmdPlan},
	"sync":        {summary: "apply the plan to the flag services", run: cmdSync},
	"sandbox":     {summary: "serve a local sandbox of a flag service's API", run: cmdSandbox},
	"run":         {summary: "run as a daemon: schedule, webhooks, drift checks, metrics", run: cmdRun},
	"export":      {summary: "write live flags as flag files, to adopt an existing account", run: cmdExport},
	"comment":     {summary: "post or update the one plan comment on a pull/merge request", run: cmdComment},
	"version":     {summary: "print the version, the commit and the Go version of this build", run: cmdVersion},
	"healthcheck": {summary: "probe a running daemon's health endpoint (for container HEALTHCHECK)", run: cmdHealthcheck},
	"doctor":      {summary: "probe an account once: which behaviours flagsync relies on hold", run: cmdDoctor},
	"completion":  {summary: "print the shell completion script for bash, zsh or fish", run: cmdCompletion, args: func(*app) []string { return cli.Shells }},
	"schema":      {summary: "print a JSON Schema: flag files, flagsync.yaml, the JSON plan, the validate report", run: cmdSchema, args: schemaNames},
	"report":      {summary: "list each flag's owner, age, expiry, health and settled environments", run: cmdReport},
	"promote":     {summary: "copy a flag's environment block onto another (staging to production) and show the plan", run: cmdPromote},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: os.Getenv, outTTY: isTerminal(stdout), errTTY: isTerminal(stderr)}
	return a.dispatch(ctx, args)
}

func (a *app) dispatch(ctx context.Context, args []string) int {
	if a.providers == nil {
		a.providers = builtin.Registry()
	}
	if len(args) == 0 {
		a.usage(a.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		a.usage(a.stdout)
		return exitOK
	case "help":
		return a.help(ctx, args[1:])
	case "-version", "--version":
		return cmdVersion(ctx, a, args[1:])
	case cli.CompleteCommand:
		for _, c := range a.complete(ctx, args[1:]) {
			fmt.Fprintln(a.stdout, c)
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		msg := fmt.Sprintf("flagsync: unknown command %q", args[0])
		if s := diag.Suggest(args[0], commandNames()); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		fmt.Fprintf(a.stderr, "%s\nRun 'flagsync -h' for the commands.\n", msg)
		return exitUsage
	}
	return cmd.run(ctx, a, args[1:])
}

// help is `flagsync help [COMMAND]`: the command's -h.
func (a *app) help(ctx context.Context, args []string) int {
	switch {
	case len(args) == 0:
		a.usage(a.stdout)
		return exitOK
	case len(args) > 1:
		fmt.Fprintln(a.stderr, "flagsync help: give one command")
		return exitUsage
	}
	if _, ok := commands[args[0]]; !ok {
		return a.dispatch(ctx, args[:1])
	}
	return a.dispatch(ctx, []string{args[0], "-h"})
}

// commandNames are the commands, sorted.
func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintf(w, "flagsync keeps feature flags (%s) in step with YAML files in Git.\n", strings.Join(a.services(), ", "))
	fmt.Fprintln(w, "\nUsage: flagsync <command> [flags]\n\nCommands:")
	names := commandNames()
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'flagsync help <command>' (or 'flagsync <command> -h') for a command's flags,")
	fmt.Fprintln(w, "'flagsync --version' for this build.")
}

// newFlagSet returns a command's flag set; its help starts with the synopsis and examples.
func (a *app) newFlagSet(name, synopsis string) *cli.FlagSet {
	return cli.NewFlagSet("flagsync", name, synopsis)
}

// parse sets the flags from their environment variables and args, and returns the exit
// code to stop with, or -1 to go on. -h writes the help to stdout.
func (a *app) parse(fs *cli.FlagSet, args []string) int { return a.parseArgs(fs, args, 0) }

// parseArgs is parse for a command that takes up to maxArgs arguments after its flags
// (fs.Args()).
func (a *app) parseArgs(fs *cli.FlagSet, args []string, maxArgs int) int {
	if a.inspect != nil {
		a.inspect(fs)
		return exitOK
	}
	err := fs.Parse(args, a.getenv)
	switch {
	case errors.Is(err, cli.ErrHelp):
		fs.WriteHelp(a.stdout)
		return exitOK
	case err != nil:
		fmt.Fprintf(a.stderr, "flagsync %s: %v\n%s\n", fs.Command(), err, fs.HelpHint())
		return exitUsage
	case fs.NArg() > maxArgs:
		fmt.Fprintf(a.stderr, "flagsync %s: unexpected argument %q\n%s\n", fs.Command(), fs.Arg(maxArgs), fs.HelpHint())
		return exitUsage
	}
	return -1
}

// flagSet returns the flags of command name as its -h shows them (nil for a command that
// takes none, or has none to offer on this registry).
func (a *app) flagSet(ctx context.Context, name string) *cli.FlagSet {
	cmd, ok := commands[name]
	if !ok {
		return nil
	}
	var got *cli.FlagSet
	b := *a
	b.stdout, b.stderr = io.Discard, io.Discard
	b.inspect = func(fs *cli.FlagSet) { got = fs }
	cmd.run(ctx, &b, nil)
	return got
}

// complete returns the completions of the last of words, the words after "flagsync".
func (a *app) complete(ctx context.Context, words []string) []string {
	if len(words) <= 1 {
		cur := ""
		if len(words) == 1 {
			cur = words[0]
		}
		if strings.HasPrefix(cur, "-") {
			return cli.Filter([]string{"--help", "--version"}, cur)
		}
		return cli.Filter(append(commandNames(), "help"), cur)
	}
	name, rest := words[0], words[1:]
	cur := rest[len(rest)-1]
	if name == "help" {
		if len(rest) == 1 {
			return cli.Filter(commandNames(), cur)
		}
		return nil
	}
	var out []string
	if fs := a.flagSet(ctx, name); fs != nil {
		out = fs.Complete(rest)
	}
	if cmd := commands[name]; cmd.args != nil && len(out) == 0 && !strings.HasPrefix(cur, "-") && !afterValueFlag(a.flagSet(ctx, name), rest) {
		out = cli.Filter(cmd.args(a), cur)
	}
	return out
}

// afterValueFlag reports whether the word being completed is the value of a flag.
func afterValueFlag(fs *cli.FlagSet, rest []string) bool {
	if fs == nil || len(rest) < 2 {
		return false
	}
	prev := rest[len(rest)-2]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") {
		return false
	}
	for _, f := range fs.Flags() {
		if f.Name == strings.TrimLeft(prev, "-") {
			return f.Kind != "bool"
		}
	}
	return false
}

// secret reads a secret from NAME, or from the file named by NAME_FILE.
func (a *app) secret(name string) (string, error) { return provider.Secret(a.getenv, name) }

// logFlags are the logging flags every long-running or networked command takes.
type logFlags struct {
	level  string
	format string
}

// addLogFlags adds --log-level, --log-format and --no-color, with the same variables in
// every command.
func (a *app) addLogFlags(fs *cli.FlagSet) *logFlags {
	l := &logFlags{}
	fs.StringVar(&l.level, "log-level", "", "log level: debug, info, warn or error")
	fs.Env("log-level", "FLAGSYNC_LOG_LEVEL")
	fs.DefaultText("log-level", `"info"`)
	fs.StringVar(&l.format, "log-format", "text", "log format on stderr: text (key=value) or json (one object a line)")
	fs.Env("log-format", "FLAGSYNC_LOG_FORMAT")
	fs.Enum("log-format", "text", "json")
	fs.BoolVar(&a.noColor, "no-color", false, "no colour or other escape code in any output (also: NO_COLOR set to anything, TERM=dumb)")
	fs.EnvPresence("no-color", "NO_COLOR")
	return l
}

// quietOnTerminal makes warn the default log level when a person watches: when stdout
// and stderr are both a terminal, the plan and the results on stdout already tell them
// what each change did, and info lines would repeat them. Redirected output keeps the
// info logs on stderr; --log-level and FLAGSYNC_LOG_LEVEL still win.
func (a *app) quietOnTerminal(fs *cli.FlagSet) {
	a.quiet = true
	fs.DefaultText("log-level", `"info"; "warn" when stdout and stderr are both a terminal`)
}

// color reports whether stdout gets ANSI colours: a terminal, without --no-color,
// NO_COLOR or TERM=dumb.
func (a *app) color() bool {
	return a.outTTY && !a.noColor && a.getenv("NO_COLOR") == "" && a.getenv("TERM") != "dumb"
}

// logger builds the process logger; logs go to stderr so stdout stays machine-readable.
func (a *app) logger(l *logFlags) (*slog.Logger, error) {
	name := l.level
	if name == "" {
		name = "info"
		if a.quiet && a.outTTY && a.errTTY {
			name = "warn"
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(a.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(a.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", l.format)
}

// isTerminal reports whether w is a terminal (not a file, a pipe or /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// services names the registered flag services for people, in registration order.
func (a *app) services() []string {
	var out []string
	for _, p := range a.providers.All() {
		out = append(out, p.Help().Service)
	}
	return out
}
