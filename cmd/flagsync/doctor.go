package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/flagsync/flagsync/internal/provider"
)

// doctors returns the providers that offer a probe.
func (a *app) doctors() []provider.Doctor {
	var out []provider.Doctor
	for _, p := range a.providers.All() {
		if d, ok := p.(provider.Doctor); ok {
			out = append(out, d)
		}
	}
	return out
}

// doctorSynopsis is doctor's help: each service's probe.
func (a *app) doctorSynopsis() string {
	var names []string
	var usages []provider.Usage
	for _, d := range a.doctors() {
		names = append(names, d.Name())
		usages = append(usages, d.DoctorUsage())
	}
	return "Usage: flagsync doctor [--vendor " + strings.Join(names, "|") + "] [--format text|json] [flags]\n\n" +
		joinUsages(usages, "Exit codes: 0 every behaviour flagsync relies on holds, 1 one does not (the row says what\nto set or report) or the probe could not run, 64 usage.")
}

// joinUsages renders services' parts of a command's help: each one's text, then more
// (when not empty), then every example.
func joinUsages(usages []provider.Usage, more string, examples ...string) string {
	var texts []string
	for _, u := range usages {
		texts = append(texts, u.Text)
		examples = append(examples, u.Examples...)
	}
	if more != "" {
		texts = append(texts, more)
	}
	return strings.Join(texts, "\n\n") + "\n\nExamples:\n  " + strings.Join(examples, "\n  ")
}

func cmdDoctor(ctx context.Context, a *app, args []string) int {
	doctors := a.doctors()
	if len(doctors) == 0 {
		fmt.Fprintln(a.stderr, "flagsync doctor: no registered flag service offers a probe")
		return exitUsage
	}
	fs := a.newFlagSet("doctor", a.doctorSynopsis())
	format := fs.String("format", "text", "output: text or json")
	fs.Enum("format", "text", "json")
	names := make([]string, len(doctors))
	var flags []provider.Flag
	for i, d := range doctors {
		names[i] = d.Name()
		flags = append(flags, d.DoctorFlags()...)
	}
	vendor := fs.String("vendor", names[0], "the service to probe: "+strings.Join(names, " or "))
	fs.Enum("vendor", names...)
	values := a.addProviderFlags(fs, flags)
	var providers []provider.Provider
	for _, d := range doctors {
		providers = append(providers, d)
	}
	conn := a.addConnFlags(fs, "probe a sandbox started in this process instead of the service (no credentials needed)", providers...)
	logf := a.addLogFlags(fs)
	a.quietOnTerminal(fs)
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	var doc provider.Doctor
	for _, d := range doctors {
		if d.Name() == *vendor {
			doc = d
		}
	}
	switch {
	case doc == nil:
		fmt.Fprintf(a.stderr, "flagsync doctor: --vendor %q: want %s\n", *vendor, strings.Join(names, " or "))
		return exitUsage
	case *format != "text" && *format != "json":
		fmt.Fprintf(a.stderr, "flagsync doctor: --format %q: want text or json\n", *format)
		return exitUsage
	}
	if code := conn.check(a); code >= 0 {
		return code
	}
	logger, err := a.logger(logf)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync doctor: %v\n", err)
		return exitUsage
	}
	in := provider.ConnectInput{Values: conn.values(), Getenv: a.getenv, Sandbox: conn.sandbox, Logger: logger}
	for k, v := range values() {
		in.Values[k] = v
	}
	probe, err := doc.NewProbe(in)
	if err != nil {
		return usageOr(a, "flagsync doctor", err)
	}
	defer probe.Close()
	return a.runProbe(ctx, probe, *format)
}

// runProbe runs a prepared probe and writes its report: the preface goes where the report
// goes, unless that is JSON, which stays one object.
func (a *app) runProbe(ctx context.Context, probe provider.Probe, format string) int {
	preface := a.stdout
	if format == "json" {
		preface = a.stderr
	}
	fmt.Fprintln(preface, probe.Preface())
	if format == "text" {
		fmt.Fprintln(a.stdout)
	}
	rep := probe.Run(ctx)
	var err error
	if format == "json" {
		err = rep.WriteJSON(a.stdout)
	} else {
		err = rep.WriteText(a.stdout)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync doctor: write the report: %v\n", err)
		return exitFail
	}
	if !rep.OK() {
		return exitFail
	}
	return exitOK
}
