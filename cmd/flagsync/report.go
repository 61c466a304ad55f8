package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/lifecycle"
	"github.com/flagsync/flagsync/internal/reconcile"
)

const reportSynopsis = `Usage: flagsync report [--format text|markdown|json] [--days N] [flags]

Lists where each flag in Git stands in its life: its owner, its age (from the service's
creation date), its expiry date (overdue flags first), the service's own health where it
has one (Kameleoon's health, Unleash's stale mark), the environments where it has served
the same outcome to everyone (fully on or fully off) for --days days or more, and the
flags archived in the service but still in Git. owner, expires and permanent are
flagsync's own fields of a flag file (docs/lifecycle.md); they are never sent.

The live flags are read as a full plan reads them (Kameleoon: one list per site); nothing
is written.

Exit codes: 0 the report was written, 1 error or invalid files (the problems are
printed), 64 usage.

Examples:
  flagsync report --sandbox --repo examples/flags
  flagsync report --path flags --format markdown --out lifecycle.md
  flagsync report --format json | jq '.flags[] | select(.states | index("overdue"))'`

// reportFlags are report's own flags.
type reportFlags struct {
	format, outPath string
	days            int
}

func cmdReport(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("report", reportSynopsis)
	src := a.addSourceFlags(fs)
	conn := a.addConnFlags(fs, a.sandboxUsage(), a.providers.All()...)
	logf := a.addLogFlags(fs)
	a.quietOnTerminal(fs)
	var f reportFlags
	fs.StringVar(&f.format, "format", "text", "output: text, markdown or json")
	fs.Enum("format", "text", "markdown", "json")
	fs.IntVar(&f.days, "days", lifecycle.DefaultDays, "an environment is reported fully on or off once it has served the same outcome to everyone for this many days")
	fs.StringVar(&f.outPath, "out", "", "write the report to this file instead of stdout")
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	if f.days < 1 {
		fmt.Fprintf(a.stderr, "flagsync report: --days %d: must be at least 1\n%s\n", f.days, fs.HelpHint())
		return exitUsage
	}
	if code := conn.check(a); code >= 0 {
		return code
	}
	logger, err := a.logger(logf)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync report: %v\n", err)
		return exitUsage
	}
	snap, err := src.open(ctx, logger)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync report: %v\n", err)
		return exitFail
	}
	l, err := reconcile.Load(a.providers.FileVendors(), reconcile.Source{FS: snap.FS, Dir: snap.Dir, Revision: snap.Revision, Logger: logger})
	if err != nil {
		var invalid *diag.InvalidError
		if errors.As(err, &invalid) {
			a.printRunError("report", err)
			return exitFail
		}
		fmt.Fprintf(a.stderr, "flagsync report: %v\n", err)
		return exitFail
	}
	var calls atomic.Int64
	conns, err := a.providers.Connect(ctx, l, conn.options(a, func(api.CallInfo) { calls.Add(1) }, logger.With("revision", snap.Revision)))
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync report: %v\n", err)
		return usageCode(err)
	}
	defer conns.Close()
	flags, err := readLifecycle(ctx, l, conns.Vendors)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync report: %v\n", err)
		return exitFail
	}
	rep := lifecycle.Build(flags, lifecycle.Options{Now: time.Now(), Days: f.days})
	logger.Info("report written", "flags", len(rep.Flags), "api_calls", calls.Load())
	var out bytes.Buffer
	switch f.format {
	case "markdown":
		err = lifecycle.RenderMarkdown(&out, rep)
	case "json":
		err = lifecycle.RenderJSON(&out, rep)
	default:
		err = lifecycle.RenderText(&out, rep)
	}
	if err == nil {
		err = a.writeOutput(f.outPath, out.Bytes())
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync report: %v\n", err)
		return exitFail
	}
	return exitOK
}

// readLifecycle reads every service's live flags as a full run does, through the
// connected vendors, and returns where each flag in Git stands (lifecycle.Collect).
func readLifecycle(ctx context.Context, l *reconcile.Loaded, vendors []reconcile.Vendor) ([]lifecycle.Flag, error) {
	bound, err := l.Connect(vendors)
	if err != nil {
		return nil, err
	}
	for _, pt := range bound.Parts {
		if _, ok := pt.Repo.(lifecycle.Reader); !ok {
			continue
		}
		if err := pt.Repo.Read(ctx, false); err != nil {
			return nil, err
		}
	}
	return lifecycle.Collect(bound), nil
}
