package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/export"
	kexport "github.com/flagsync/flagsync/internal/kameleoon/export"
	"github.com/flagsync/flagsync/internal/plan"
	splitexport "github.com/flagsync/flagsync/internal/split/export"
)

const exportSynopsis = `Usage: flagsync export --site-code CODE[,CODE...] [--out DIR] [--force] [flags]

Reads the live flags of each site from Kameleoon (one list call per site, never one
call per flag) and writes them as flag files, to start managing an existing account
with flagsync without retyping it:

  one site:     DIR/flagsync.yaml (siteCode, environments), DIR/<featureKey>.yaml
  several:      DIR/flagsync.yaml (environments), DIR/<siteCode>/<featureKey>.yaml

Before writing, flagsync loads the files as a sync would and plans them against the
flags it just read: they must be valid and plan to zero changes (exit 1 otherwise, with
the problems). Existing files are not overwritten unless --force; nothing is deleted.
The same live flags always give byte-identical files, so a re-export diffs cleanly.

Credentials come from KAMELEOON_CLIENT_ID and KAMELEOON_CLIENT_SECRET (or _FILE); with
--sandbox, the flags are read from the local sandbox instead.

With --vendor split it exports a Split (Harness FME) workspace instead: one list of
flags and one list of definitions per environment (--environments, or every environment
of the workspace), written as a Split repository: DIR/flagsync.yaml (vendor: split,
workspace, trafficType, environments) and DIR/<name>.yaml. The admin API key comes from
SPLIT_ADMIN_API_KEY (or _FILE), the API from SPLIT_API_URL or --split-api-url.

Examples:
  flagsync export --site-code pzllysfw2f
  flagsync export --site-code pzllysfw2f,k3mx9q2b7a --out flags
  flagsync export --sandbox --site-code pzllysfw2f --out flags --force
  flagsync export --vendor split --workspace 5a3e… --environments Staging,Production --out flags`

// defaultExportDir is where export writes when --out is not given: a folder of its own,
// so that an export never mixes with other files by accident.
const defaultExportDir = "flags"

// siteCodeLen is the length of every Kameleoon site code (the flag schema's siteCode).
const siteCodeLen = 10

// siteCodes collects --site-code values, repeated or comma-separated.
type siteCodes []string

func (s *siteCodes) String() string { return strings.Join(*s, ",") }

func (s *siteCodes) Set(v string) error {
	for _, code := range splitList(v) {
		if len(code) != siteCodeLen {
			return fmt.Errorf("%q is not a site code (they have %d characters)", code, siteCodeLen)
		}
		if !slices.Contains(*s, code) {
			*s = append(*s, code)
		}
	}
	return nil
}

func cmdExport(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("export", exportSynopsis)
	var sites siteCodes
	fs.Var(&sites, "site-code", "site code to export (Admin > Projects in Kameleoon); repeat it or separate codes with commas")
	out := fs.String("out", defaultExportDir, "folder the files are written to (created if missing)")
	force := fs.Bool("force", false, "overwrite files that exist (files not part of the export are never touched)")
	schema := fs.String("schema", "", "where the files' yaml-language-server comment points editors: a URL or path of the folder holding flag.schema.json, or none (default: the schema/ folder of the repository holding --out, if it has one; else none)")
	vendor := fs.String("vendor", "kameleoon", "the service to export from: kameleoon or split")
	workspace := fs.String("workspace", "", "with --vendor split: the workspace (project) id to export")
	environments := fs.String("environments", "", "with --vendor split: comma-separated environment names to export, in apply order (default: every environment of the workspace)")
	conn := a.addAPIFlags(fs)
	logf := a.addLogFlags(fs)
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	switch *vendor {
	case "kameleoon":
		if *workspace != "" || *environments != "" {
			fmt.Fprintln(a.stderr, "flagsync export: --workspace and --environments go with --vendor split")
			return exitUsage
		}
	case "split":
		if len(sites) > 0 || *workspace == "" {
			fmt.Fprintln(a.stderr, "flagsync export: --vendor split exports one --workspace (not --site-code)")
			return exitUsage
		}
		return a.exportSplit(ctx, conn, logf, *workspace, splitList(*environments), *out, *schema, *force)
	default:
		fmt.Fprintf(a.stderr, "flagsync export: --vendor %q: want kameleoon or split\n", *vendor)
		return exitUsage
	}
	if len(sites) == 0 {
		fmt.Fprintln(a.stderr, "flagsync export: --site-code is required")
		fs.Usage()
		return exitUsage
	}
	if *out == "" {
		fmt.Fprintln(a.stderr, "flagsync export: --out must not be empty")
		return exitUsage
	}
	if code := conn.check(a); code >= 0 {
		return code
	}
	logger, err := a.logger(logf)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync export: %v\n", err)
		return exitUsage
	}
	schemaDir, err := exportSchema(*schema, *out)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync export: %v\n", err)
		return exitUsage
	}

	// There is no repository to read: the embedded sandbox gets its default environments
	// (plus those its state file records).
	client, err := conn.connect(a, logger, &snapshot{FS: fstest.MapFS{}, Dir: "."})
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync export: %v\n", err)
		return exitFail
	}
	defer client.close()

	live, err := kexport.Read(ctx, client.api, sites)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync export: %v\n", err)
		return exitFail
	}
	var empty []string
	total := 0
	for _, s := range live {
		total += len(s.Flags)
		if len(s.Flags) == 0 {
			empty = append(empty, s.Code)
		}
	}
	if total == 0 {
		fmt.Fprintf(a.stderr, "flagsync export: nothing to export: %s has no flags in %s (is the site code right?)\n",
			plural(len(sites), "site")+" "+strings.Join(sites, ", "), client.where)
		return exitFail
	}

	e, err := kexport.Build(live, export.Options{Schema: schemaDir})
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync export: %v\n", err)
		return exitFail
	}
	check, err := kexport.Verify(e, live)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync export: %v\n", err)
		return exitFail
	}
	return a.finishExport(e, check, *out, *force, empty, "site", plural(len(e.Scopes), "site"), int(client.calls.Load()), conn)
}

// finishExport writes the files (refusing to overwrite without force), reports them and
// the check, and returns the exit code. what names the exported scopes for people
// ("2 sites", "workspace ws-1").
func (a *app) finishExport(e *export.Export, check *export.Check, out string, force bool, empty []string, noun, what string, calls int, conn *apiFlags) int {
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
	for _, code := range empty {
		fmt.Fprintf(a.stdout, "note: %s %s has no flags\n", noun, code)
	}
	for _, n := range e.Notes {
		fmt.Fprintf(a.stdout, "note: %s\n", n)
	}
	archived := ""
	if e.Archived > 0 {
		archived = fmt.Sprintf(" (%d archived)", e.Archived)
	}
	fmt.Fprintf(a.stdout, "Exported %s%s from %s into %s: %s, %s.\n",
		plural(e.Flags, "flag"), archived, what, out,
		plural(len(e.Files), "file"), plural(calls, "API call"))

	if !check.OK() {
		a.printExportCheck(check, out)
		return exitFail
	}
	fmt.Fprintf(a.stdout, "The files are valid and plan to no change. Next: flagsync plan %s\n", exportPlanArgs(out, conn))
	return exitOK
}

// exportSplit exports one Split workspace (flagsync export --vendor split).
func (a *app) exportSplit(ctx context.Context, conn *apiFlags, logf *logFlags, workspace string, envs []string, out, schemaFlag string, force bool) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(a.stderr, "flagsync export: %v\n", err)
		return code
	}
	if out == "" {
		return fail(exitUsage, errors.New("--out must not be empty"))
	}
	if code := conn.check(a); code >= 0 {
		return code
	}
	logger, err := a.logger(logf)
	if err != nil {
		return fail(exitUsage, err)
	}
	schemaDir, err := exportSchema(schemaFlag, out)
	if err != nil {
		return fail(exitUsage, err)
	}
	c := &apiConn{}
	client, where, stop, err := conn.connectSplit(a, logger, &snapshot{FS: fstest.MapFS{}, Dir: "."}, func(api.CallInfo) { c.calls.Add(1) }, logger)
	if err != nil {
		return fail(exitFail, err)
	}
	defer stop()
	if len(envs) == 0 {
		if envs, err = client.ListEnvironments(ctx, workspace); err != nil {
			return fail(exitFail, err)
		}
	}
	w, err := splitexport.Read(ctx, client, workspace, envs)
	if err != nil {
		return fail(exitFail, err)
	}
	if len(w.Flags) == 0 {
		return fail(exitFail, fmt.Errorf("nothing to export: workspace %s has no flags in %s (is the workspace id right?)", workspace, where))
	}
	e, err := splitexport.Build(w, export.Options{Schema: schemaDir})
	if err != nil {
		return fail(exitFail, err)
	}
	check, err := splitexport.Verify(e, w)
	if err != nil {
		return fail(exitFail, err)
	}
	return a.finishExport(e, check, out, force, nil, "workspace", "workspace "+workspace, int(c.calls.Load()), conn)
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
func exportPlanArgs(out string, conn *apiFlags) string {
	args := "--repo " + shellQuote(out)
	if rel := filepath.Clean(out); !filepath.IsAbs(rel) && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		args = "--path " + shellQuote(filepath.ToSlash(rel))
	}
	if conn.sandbox {
		args += " --sandbox"
		if conn.sandboxState != defaultSandboxState {
			args += " --sandbox-state " + shellQuote(conn.sandboxState)
		}
		if conn.splitSandboxState != defaultSplitSandboxState {
			args += " --split-sandbox-state " + shellQuote(conn.splitSandboxState)
		}
	}
	return args
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
