// Command flagsync keeps feature flags in step with YAML files in Git, for every flag
// service internal/provider/builtin registers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/term"

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
	errTTY         bool               // stderr is a terminal: text logs
	providers      *provider.Registry // the flag services (builtin.Registry() when nil)
}

type command struct {
	summary string
	run     func(ctx context.Context, a *app, args []string) int
}

var commands = map[string]command{
	"validate":    {"check flag files against the schema and the semantic rules", cmdValidate},
	"plan":        {"show the changes a sync would make", cmdPlan},
	"sync":        {"apply the plan to the flag services", cmdSync},
	"sandbox":     {"serve a local sandbox of a flag service's API", cmdSandbox},
	"run":         {"run as a daemon: schedule, webhooks, drift checks, metrics", cmdRun},
	"export":      {"write live flags as flag files, to adopt an existing account", cmdExport},
	"comment":     {"post or update the one plan comment on a pull/merge request", cmdComment},
	"version":     {"print the version", cmdVersion},
	"healthcheck": {"probe a running daemon's health endpoint (for container HEALTHCHECK)", cmdHealthcheck},
	"doctor":      {"probe an account once: which behaviours flagsync relies on hold", cmdDoctor},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: os.Getenv, outTTY: isTerminal(stdout), errTTY: isTerminal(stderr)}
	return a.dispatch(ctx, args)
}

func (a *app) dispatch(ctx context.Context, args []string) int {
	if a.providers == nil {
		a.providers = builtin.Registry()
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		a.usage(a.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(a.stderr, "flagsync: unknown command %q\n\n", args[0])
		a.usage(a.stderr)
		return exitUsage
	}
	return cmd.run(ctx, a, args[1:])
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintf(w, "flagsync keeps feature flags (%s) in step with YAML files in Git.\n", strings.Join(a.services(), ", "))
	fmt.Fprintln(w, "\nUsage: flagsync <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'flagsync <command> -h' for a command's flags.")
}

// newFlagSet returns a flag set that reports errors instead of exiting. Its usage text
// starts with the given synopsis and examples.
func (a *app) newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("flagsync "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "%s\n\nFlags:\n", strings.TrimSpace(synopsis))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and returns the exit code to stop with, or -1 to go on.
func (a *app) parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage
	}
	return -1
}

// envDefault returns the value of the environment variable, or def.
func (a *app) envDefault(name, def string) string {
	if v := a.getenv(name); v != "" {
		return v
	}
	return def
}

// secret reads a secret from NAME, or from the file named by NAME_FILE.
func (a *app) secret(name string) (string, error) { return provider.Secret(a.getenv, name) }

// logFlags are the logging flags every long-running or networked command takes.
type logFlags struct {
	level  string
	format string
}

func (a *app) addLogFlags(fs *flag.FlagSet) *logFlags {
	l := &logFlags{}
	fs.StringVar(&l.level, "log-level", a.envDefault("FLAGSYNC_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env FLAGSYNC_LOG_LEVEL)")
	def := "json"
	if a.errTTY {
		def = "text"
	}
	fs.StringVar(&l.format, "log-format", a.envDefault("FLAGSYNC_LOG_FORMAT", def), "log format: text or json (default text on a terminal; env FLAGSYNC_LOG_FORMAT)")
	return l
}

// logger builds the process logger; logs go to stderr so stdout stays machine-readable.
func (a *app) logger(l *logFlags) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
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
