package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/cli"
	"github.com/flagsync/flagsync/internal/provider"
)

// addProviderFlags adds flags declared by providers to fs and returns what reads their
// values once fs is parsed. A flag's variable is the command's rule unless it names its
// own (EnvDefault), which the provider may read itself (EnvByProvider).
func (a *app) addProviderFlags(fs *cli.FlagSet, flags []provider.Flag) func() provider.Values {
	read := map[string]func() any{}
	for _, f := range flags {
		switch {
		case f.EnvDefault != "" && f.EnvByProvider:
			fs.EnvShown(f.Name, f.EnvDefault)
		case f.EnvDefault != "":
			fs.Env(f.Name, f.EnvDefault)
		}
		if len(f.Values) > 0 {
			fs.Enum(f.Name, f.Values...)
		}
		switch def := f.Default.(type) {
		case string:
			p := fs.String(f.Name, def, f.Usage)
			read[f.Name] = func() any { return *p }
		case int:
			p := fs.Int(f.Name, def, f.Usage)
			read[f.Name] = func() any { return *p }
		case time.Duration:
			p := fs.Duration(f.Name, def, f.Usage)
			read[f.Name] = func() any { return *p }
		case bool:
			p := fs.Bool(f.Name, def, f.Usage)
			read[f.Name] = func() any { return *p }
		case []string:
			l := &listValue{}
			fs.Var(l, f.Name, f.Usage)
			read[f.Name] = func() any { return []string(*l) }
		default:
			panic(fmt.Sprintf("flag --%s: default of unsupported type %T", f.Name, f.Default))
		}
	}
	return func() provider.Values {
		v := provider.Values{}
		for name, r := range read {
			v[name] = r()
		}
		return v
	}
}

// listValue collects a list flag's values, repeated or comma-separated, without
// duplicates.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(v string) error {
	for _, s := range provider.SplitList(v) {
		if !slices.Contains(*l, s) {
			*l = append(*l, s)
		}
	}
	return nil
}

// connFlags select how a command reaches its flag services: --sandbox, and every
// provider's own connection flags.
type connFlags struct {
	sandbox bool
	values  func() provider.Values
	flags   []provider.Flag
}

// addConnFlags adds --sandbox (described by sandboxUsage) and the connection flags of
// providers to fs.
func (a *app) addConnFlags(fs *cli.FlagSet, sandboxUsage string, providers ...provider.Provider) *connFlags {
	c := &connFlags{}
	fs.BoolVar(&c.sandbox, "sandbox", false, sandboxUsage)
	for _, p := range providers {
		c.flags = append(c.flags, p.Flags()...)
	}
	c.values = a.addProviderFlags(fs, c.flags)
	return c
}

// sandboxUsage describes --sandbox for commands that sync: each service's files go to
// its own sandbox.
func (a *app) sandboxUsage() string {
	var each []string
	for _, p := range a.providers.All() {
		h := p.Help()
		each = append(each, h.Sandbox+" for "+h.Service+" flag files")
	}
	return "talk to sandboxes started in this process instead of the services (no credentials needed): " + strings.Join(each, ", ")
}

// options are how the command connects: the parsed flags, observe and the clients' logger.
func (c *connFlags) options(a *app, observe func(api.CallInfo), logger *slog.Logger) provider.Options {
	return provider.Options{Values: c.values(), Getenv: a.getenv, Sandbox: c.sandbox, Observe: observe, Logger: logger}
}

// check reports a contradictory combination of connection flags (exit code), or -1.
func (c *connFlags) check(a *app) int {
	if err := a.providers.Check(c.options(a, nil, nil)); err != nil {
		fmt.Fprintf(a.stderr, "flagsync: %v\n", err)
		return exitUsage
	}
	return -1
}

// stateArgs are the connection flags a suggested command repeats: with --sandbox, each
// sandbox state file that is not the default.
func (c *connFlags) stateArgs() string {
	if !c.sandbox {
		return ""
	}
	args := " --sandbox"
	v := c.values()
	for _, f := range c.flags {
		if s, ok := v[f.Name].(string); ok && f.State && s != f.Default {
			args += " --" + f.Name + " " + shellQuote(s)
		}
	}
	return args
}

// usageCode is the exit code of an error from a provider: 64 for a *provider.UsageError.
func usageCode(err error) int {
	var usage *provider.UsageError
	if errors.As(err, &usage) {
		return exitUsage
	}
	return exitFail
}

// foreignFlags reports a flag given on the command line that belongs to another
// provider than p (owners maps a provider's flag to it; nil for a flag several take),
// as a usage message listing that provider's flags (others), or "".
func foreignFlags(fs *cli.FlagSet, p provider.Provider, others map[string][]provider.Flag, owners map[string]provider.Provider) string {
	var given []string
	fs.Visit(func(f *flag.Flag) { given = append(given, f.Name) })
	for _, name := range given {
		q := owners[name]
		if q == nil || q.Name() == p.Name() {
			continue
		}
		var names []string
		for _, f := range others[q.Name()] {
			names = append(names, f.Name)
		}
		return fmt.Sprintf("%s are %s's (--vendor %s)", provider.JoinFlags(names), q.Help().Service, q.Name())
	}
	return ""
}
