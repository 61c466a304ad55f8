package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/cli"
	"github.com/flagsync/flagsync/internal/export"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/provider"
)

// exportSynopsis is export's help.
func (a *app) exportSynopsis() string {
	var usages []provider.Usage
	for _, p := range a.providers.All() {
		if e, ok := p.(provider.Exporter); ok {
			usages = append(usages, e.ExportUsage())
		}
	}
	return `Usage: flagsync export [--vendor NAME] [--out DIR] [--force] [flags]

Reads the live flags of a service (listed, never read one by one) and writes them as flag
files, to start managing an existing account with flagsync without retyping it. --vendor
names the service (` + strings.Join(a.exporters(), ", ") + `; default ` + a.providers.Default().Name() + `); the flags that say what to export
are each service's.

Before writing, flagsync loads the files as a sync would and plans them against the
flags it just read: they must be valid and plan to zero changes (exit 1 otherwise, with
the problems). Existing files are not overwritten unless --force; nothing is deleted.
The same live flags always give byte-identical files, so a re-export diffs cleanly.

` + joinUsages(usages, a.credentialsHelp())
}

// defaultExportDir is where export writes when --out is not given: a folder of its own,
// so that an export never mixes with other files by accident.
const defaultExportDir = "flags"

// exporters names the providers that export.
func (a *app) exporters() []string {
	var out []string
	for _, p := range a.providers.All() {
		if _, ok := p.(provider.Exporter); ok {
			out = append(out, p.Name())
		}
	}
	return out
}

// exportFlags are export's own flags.
type exportFlags struct {
	out, schema, vendor string
	force               bool
	values              func() provider.Values
	owners              map[string]provider.Provider // export flag → its provider
	byVendor            map[string][]provider.Flag
}

func (a *app) addExportFlags(fs *cli.FlagSet) *exportFlags {
	f := &exportFlags{owners: map[string]provider.Provider{}, byVendor: map[string][]provider.Flag{}}
	fs.StringVar(&f.out, "out", defaultExportDir, "folder the files are written to (created if missing)")
	fs.BoolVar(&f.force, "force", false, "overwrite files that exist (files not part of the export are never touched)")
	fs.StringVar(&f.schema, "schema", "", "where the files' yaml-language-server comment points editors: a URL or path of the folder holding flag.schema.json, or none (default: the schema/ folder of the repository holding --out, if it has one; else none)")
	fs.StringVar(&f.vendor, "vendor", a.providers.Default().Name(), "the service to export from: "+strings.Join(a.exporters(), " or "))
	fs.Enum("vendor", a.exporters()...)
	var all []provider.Flag
	for _, p := range a.providers.All() {
		if e, ok := p.(provider.Exporter); ok {
			for _, fl := range e.ExportFlags() {
				f.owners[fl.Name] = p
				all = append(all, fl)
			}
			f.byVendor[p.Name()] = e.ExportFlags()
		}
	}
	f.values = a.addProviderFlags(fs, all)
	return f
}

func cmdExport(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("export", a.exportSynopsis())
	f := a.addExportFlags(fs)
	conn := a.addConnFlags(fs, a.sandboxUsage(), a.providers.All()...)
	logf := a.addLogFlags(fs)
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(a.stderr, "flagsync export: "+format+"\n", args...)
		return exitUsage
	}
	p, ok := a.providers.Lookup(f.vendor)
	e, exports := p.(provider.Exporter)
	if !ok || !exports {
		return usage("--vendor %q: want %s", f.vendor, strings.Join(a.exporters(), " or "))
	}
	if msg := foreignFlags(fs, p, f.byVendor, f.owners); msg != "" {
		return usage("%s", msg)
	}
	values := f.values()
	if err := e.CheckExport(values); err != nil {
		return usage("%v", err)
	}
	if f.out == "" {
		return usage("--out must not be empty")
	}
	if code := conn.check(a); code >= 0 {
		return code
	}
	logger, err := a.logger(logf)
	if err != nil {
		return usage("%v", err)
	}
	schemaDir, err := exportSchema(f.schema, f.out)
	if err != nil {
		return usage("%v", err)
	}
	var calls atomic.Int64
	c, err := provider.Connect(ctx, p, nil, conn.options(a, func(api.CallInfo) { calls.Add(1) }, logger))
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync export: %v\n", err)
		return exitFail
	}
	defer c.Close()
	x, err := e.Export(ctx, c, values, export.Options{Schema: schemaDir})
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync export: %v\n", err)
		return exitFail
	}
	return a.finishExport(x, f.out, f.force, int(calls.Load()), conn)
}

// finishExport writes the files (refusing to overwrite without force), reports them and
// the check, and returns the exit code.
func (a *app) finishExport(x *provider.Exported, out string, force bool, calls int, conn *connFlags) int {
	e, check := x.Export, x.Check
	replaced, err := export.Write(out, e.Files, force)
	var exists *export.ExistsError
	if errors.As(err, &exists) {
		fmt.Fprintf(a.stderr, "flagsync export: %s already holds %d of the files: nothing was written (pass --force to overwrite them):\n", out, len(exists.Paths))
		for _, p := range exists.Paths {
			fmt.Fprintf(a.stderr, "  %s\n", filepath.Join(out, filepath.FromSlash(p)))
		}
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync export: %v\n", err)
		return exitFail
	}

	isReplaced := make(map[string]bool, len(replaced))
	for _, p := range replaced {
		isReplaced[p] = true
	}
	for _, f := range e.Files {
		verb := "wrote"
		if isReplaced[f.Path] {
			verb = "replaced"
		}
		fmt.Fprintf(a.stdout, "  %-8s %s\n", verb, filepath.Join(out, filepath.FromSlash(f.Path)))
	}
	for _, code := range x.Empty {
		fmt.Fprintf(a.stdout, "note: %s %s has no flags\n", x.Noun, code)
	}
	for _, n := range e.Notes {
		fmt.Fprintf(a.stdout, "note: %s\n", n)
	}
	archived := ""
	if e.Archived > 0 {
		archived = fmt.Sprintf(" (%d archived)", e.Archived)
	}
	fmt.Fprintf(a.stdout, "Exported %s%s from %s into %s: %s, %s.\n",
		plural(e.Flags, "flag"), archived, x.What, out,
		plural(len(e.Files), "file"), plural(calls, "API call"))

	if !check.OK() {
		a.printExportCheck(check, out)
		return exitFail
	}
	fmt.Fprintf(a.stdout, "The files are valid and plan to no change. Next: flagsync plan %s\n", exportPlanArgs(out, conn))
	return exitOK
}

// printExportCheck explains on stderr why the written files do not reproduce the live
// flags: a bug, or live data the flag format cannot hold.
func (a *app) printExportCheck(check *export.Check, out string) {
	if len(check.Diagnostics) > 0 {
		for _, d := range check.Diagnostics {
			fmt.Fprintf(a.stderr, "%s\n", filepath.Join(out, filepath.FromSlash(d.String())))
		}
		fmt.Fprintf(a.stderr, "flagsync export: the files were written, but %s: fix them before syncing\n", plural(len(check.Diagnostics), "problem"))
		return
	}
	_ = plan.RenderText(a.stderr, check.Plan, plan.TextOptions{})
	fmt.Fprintln(a.stderr, "flagsync export: the files were written, but they do not describe the live flags exactly (the plan above is what a sync would change): review them before syncing")
}

// exportPlanArgs are the arguments of the plan that checks an export.
func exportPlanArgs(out string, conn *connFlags) string {
	args := "--repo " + shellQuote(out)
	if rel := filepath.Clean(out); !filepath.IsAbs(rel) && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		args = "--path " + shellQuote(filepath.ToSlash(rel))
	}
	return args + conn.stateArgs()
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// exportSchema returns the schema location for export.Options: a URL as given, a path
// made relative to the output folder, "" for none. By default it looks for a schema/
// folder with flag.schema.json in the output folder and its parents, up to the root of
// the Git work tree that holds them.
func exportSchema(flagValue, out string) (string, error) {
	switch {
	case flagValue == "none":
		return "", nil
	case strings.Contains(flagValue, "://"):
		return flagValue, nil
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return "", fmt.Errorf("--out %s: %w", out, err)
	}
	if flagValue != "" {
		abs, err := filepath.Abs(flagValue)
		if err != nil {
			return "", fmt.Errorf("--schema %s: %w", flagValue, err)
		}
		rel, err := filepath.Rel(absOut, abs)
		if err != nil {
			return "", fmt.Errorf("--schema %s: %w", flagValue, err)
		}
		return filepath.ToSlash(rel), nil
	}
	for dir := absOut; ; {
		candidate := filepath.Join(dir, "schema")
		if isFile(filepath.Join(candidate, "flag.schema.json")) {
			rel, err := filepath.Rel(absOut, candidate)
			if err != nil {
				return "", nil
			}
			return filepath.ToSlash(rel), nil
		}
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			return "", nil // the top of the work tree: look no further
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", nil
		}
		dir = parent
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
