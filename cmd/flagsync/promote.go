package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/promote"
	"github.com/flagsync/flagsync/internal/reconcile"
)

const promoteSynopsis = `Usage: flagsync promote FLAG --from ENV --to ENV [--write] [flags]

Copies the environment block --from of FLAG's file onto the block --to (rules, default,
enabled: every key of it), keeping what flagsync.yaml's promote: settings mark as
environment-specific (segment ids mapped through promote.segments, fields listed in
promote.keep), prints what changed and the plan the edited file leads to (a plan of FLAG
alone against the live service; nothing is written to it), and with --write edits the
file in place, comments and formatting kept, ready for a pull request.

FLAG is scope/key (pzllysfw2f/new_checkout) or a key that names one flag. Every service's
flag files have environments keyed by name, so promote works for each; name the fields
that hold segment ids in promote.segmentKeys when they are not segmentId (Kameleoon's).

Exit codes: 0 promoted (or nothing to change), 1 error, invalid files, or a plan that
could not be made, 64 usage.

Examples:
  flagsync promote new_checkout --from staging --to production --sandbox --repo examples/flags
  flagsync promote pzllysfw2f/new_checkout --from staging --to production --write`

// promoteFlags are promote's own flags.
type promoteFlags struct {
	from, to, format string
	write            bool
}

func cmdPromote(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("promote", promoteSynopsis)
	src := a.addSourceFlags(fs)
	conn := a.addConnFlags(fs, a.sandboxUsage(), a.providers.All()...)
	logf := a.addLogFlags(fs)
	a.quietOnTerminal(fs)
	var f promoteFlags
	fs.StringVar(&f.from, "from", "", "the environment whose block is copied (required)")
	fs.StringVar(&f.to, "to", "", "the environment whose block is rewritten (required)")
	fs.BoolVar(&f.write, "write", false, "edit the flag file in place (--repo a local folder, without --ref)")
	fs.StringVar(&f.format, "format", "text", "the plan's output: text, markdown or json (what changed goes to stderr with markdown and json)")
	fs.Enum("format", "text", "markdown", "json")
	if code := a.parseArgs(fs, args, 1); code >= 0 {
		return code
	}
	if code := f.check(a, fs.Args(), src); code >= 0 {
		return code
	}
	if code := conn.check(a); code >= 0 {
		return code
	}
	logger, err := a.logger(logf)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync promote: %v\n", err)
		return exitUsage
	}
	snap, err := src.open(ctx, logger)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync promote: %v\n", err)
		return exitFail
	}
	ff, res, code := a.promoteFile(snap, logger, fs.Arg(0), f)
	if code >= 0 {
		return code
	}
	summary := a.stdout
	if f.format != "text" {
		summary = a.stderr
	}
	writePromoteSummary(summary, ff, f, res)
	if f.write && res.Changed {
		if err := writeInPlace(filepath.Join(src.repo, filepath.FromSlash(ff.File)), res.Out); err != nil {
			fmt.Fprintf(a.stderr, "flagsync promote: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(summary, "Wrote %s.\n", ff.File)
	}
	if !res.Changed {
		return exitOK
	}
	if f.format == "text" {
		fmt.Fprintln(summary)
	}
	return a.planPromoted(ctx, conn, logger, snap, ff, res.Out, f.format)
}

// promoteFile loads the repository, finds the flag named on the command line and rewrites
// its file's target environment from the source one. code is -1 on success, else the exit
// code, the error already printed.
func (a *app) promoteFile(snap *snapshot, logger *slog.Logger, name string, f promoteFlags) (reconcile.FlagFile, *promote.Result, int) {
	fail := func(err error) (reconcile.FlagFile, *promote.Result, int) {
		fmt.Fprintf(a.stderr, "flagsync promote: %v\n", err)
		return reconcile.FlagFile{}, nil, exitFail
	}
	l, err := reconcile.Load(a.providers.FileVendors(), reconcile.Source{FS: snap.FS, Dir: snap.Dir, Revision: snap.Revision, Logger: logger})
	if err != nil {
		var invalid *diag.InvalidError
		if errors.As(err, &invalid) {
			a.printRunError("promote", err)
			return reconcile.FlagFile{}, nil, exitFail
		}
		return fail(err)
	}
	ff, err := findFlag(l.Files(), name)
	if err != nil {
		return fail(err)
	}
	data, err := readSnapshotFile(snap.FS, ff.File)
	if err != nil {
		return fail(err)
	}
	res, err := promote.Promote(data, promote.Options{From: f.from, To: f.to, Settings: l.Settings.Promote, Order: l.Settings.Environments})
	if err != nil {
		return fail(fmt.Errorf("%s: %w", ff.File, err))
	}
	return ff, res, -1
}

// planPromoted prints the plan of the edited file: a dry run of the pipeline on the
// repository with the file replaced, for this flag alone (read with one get, as the
// daemon's fast path).
func (a *app) planPromoted(ctx context.Context, conn *connFlags, logger *slog.Logger, snap *snapshot, ff reconcile.FlagFile, out []byte, format string) int {
	edited := *snap
	edited.FS = overlayFS{base: snap.FS, name: ff.File, data: out}
	if !strings.HasSuffix(edited.Revision, plan.DirtySuffix) && edited.Revision != "" {
		edited.Revision += plan.DirtySuffix
	}
	rep, conns, runErr := a.reconcile(ctx, conn, logger, &edited, reconcile.Input{DryRun: true, Only: []plan.Address{ff.Flag}})
	defer conns.Close()
	if err := a.writePlan(planFlags{format: format}, rep, runErr); err != nil {
		fmt.Fprintf(a.stderr, "flagsync promote: %v\n", err)
		return exitFail
	}
	if runErr != nil {
		a.printRunError("promote", runErr)
		return exitFail
	}
	return exitOK
}

// check checks promote's arguments: one flag, two different environments, and --write
// only where the file can be written.
func (f *promoteFlags) check(a *app, args []string, src *sourceFlags) int {
	usage := func(msg string) int {
		fmt.Fprintf(a.stderr, "flagsync promote: %s\nRun 'flagsync promote -h' for usage.\n", msg)
		return exitUsage
	}
	switch {
	case len(args) != 1:
		return usage("give the flag to promote: scope/key, or a key")
	case f.from == "" || f.to == "":
		return usage("give both --from and --to")
	case f.from == f.to:
		return usage(fmt.Sprintf("--from and --to are both %q", f.from))
	}
	if f.write {
		if src.ref != "" {
			return usage("--write edits the files on disk: leave out --ref")
		}
		if st, err := os.Stat(src.repo); err != nil || !st.IsDir() {
			return usage(fmt.Sprintf("--write edits the files on disk: --repo %q is not a local folder", src.repo))
		}
	}
	return -1
}

// findFlag returns where the flag name (scope/key, or a key that names one flag) is
// defined.
func findFlag(files []reconcile.FlagFile, name string) (reconcile.FlagFile, error) {
	var byKey []reconcile.FlagFile
	var keys []string
	for _, f := range files {
		if f.Flag.String() == name {
			return f, nil
		}
		if f.Flag.Key == name {
			byKey = append(byKey, f)
		}
		keys = append(keys, f.Flag.Key, f.Flag.String())
	}
	switch len(byKey) {
	case 1:
		return byKey[0], nil
	case 0:
		msg := fmt.Sprintf("no flag %q in the flag files", name)
		if s := diag.Suggest(name, keys); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		return reconcile.FlagFile{}, errors.New(msg)
	}
	var names []string
	for _, f := range byKey {
		names = append(names, f.Flag.String())
	}
	sort.Strings(names)
	return reconcile.FlagFile{}, fmt.Errorf("%q names %d flags (%s): give scope/key", name, len(byKey), strings.Join(names, ", "))
}

// writePromoteSummary says what the promotion changed in the file.
func writePromoteSummary(w io.Writer, ff reconcile.FlagFile, f promoteFlags, res *promote.Result) {
	if !res.Changed {
		fmt.Fprintf(w, "%s (%s): environments.%s already has environments.%s's configuration; nothing to change.\n", ff.Flag, ff.File, f.to, f.from)
		return
	}
	verb := "rewritten"
	if res.Created {
		verb = "created"
	}
	fmt.Fprintf(w, "Promote %s (%s): environments.%s %s from environments.%s.\n", ff.Flag, ff.File, f.to, verb, f.from)
	for _, c := range res.Fields {
		switch {
		case c.Before == nil:
			fmt.Fprintf(w, "  + %s: %s\n", c.Path, compact(c.After))
		case c.After == nil:
			fmt.Fprintf(w, "  - %s: %s\n", c.Path, compact(c.Before))
		default:
			fmt.Fprintf(w, "  ~ %s: %s → %s\n", c.Path, compact(c.Before), compact(c.After))
		}
	}
	for _, s := range res.Segments {
		fmt.Fprintf(w, "  segment %s: %s → %s (promote.segments)\n", s.Path, s.From, s.To)
	}
	for _, s := range res.Unmapped {
		fmt.Fprintf(w, "  segment %s: %s copied as it is (promote.segments.%s has no mapping for it)\n", s.Path, s.From, f.from)
	}
	for _, k := range res.Kept {
		fmt.Fprintf(w, "  kept %s (promote.keep)\n", k)
	}
	if res.Reformatted {
		fmt.Fprintf(w, "  the block was reformatted: a kept field exists on one side only (see docs/promote.md)\n")
	}
}

// writeInPlace replaces a file's content, keeping its permissions.
func writeInPlace(name string, data []byte) error {
	st, err := os.Stat(name)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.WriteFile(name, data, st.Mode().Perm()); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// readSnapshotFile reads a file of the snapshot.
func readSnapshotFile(fsys fs.FS, name string) ([]byte, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// overlayFS is a snapshot with one file's content replaced: the repository as it will be
// once the edit is committed.
type overlayFS struct {
	base fs.FS
	name string
	data []byte
}

// Open opens the replaced file, or the base's.
func (o overlayFS) Open(name string) (fs.File, error) {
	if path.Clean(name) == o.name {
		return fstest.MapFS{o.name: &fstest.MapFile{Data: o.data, Mode: 0o644}}.Open(o.name)
	}
	return o.base.Open(name)
}

// ReadFile reads the replaced file, or the base's.
func (o overlayFS) ReadFile(name string) ([]byte, error) {
	if path.Clean(name) == o.name {
		return append([]byte(nil), o.data...), nil
	}
	return fs.ReadFile(o.base, name)
}

// ReadDir lists the base's folder (the replaced file is in it already).
func (o overlayFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(o.base, name) }

// compact is v as one line of JSON, for the summary.
func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
