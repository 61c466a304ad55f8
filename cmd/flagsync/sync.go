package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/report"
)

// defaultMaxChanges is sync's --max-changes: a plan this large is more often a wrong
// --path or scope than an intended change.
const defaultMaxChanges = 500

// syncSynopsis is sync's help.
func (a *app) syncSynopsis() string {
	return `Usage: flagsync sync [flags]

Loads and validates the flag files, reads the live flags, prints the plan and applies
it: one create per new flag, one write per changed flag or environment. Prints a result
per change and a summary line; exits 1 if any change failed or a service does not match
the files afterwards, 0 when the only difference left is a change awaiting approval in
its service (a change request was filed). Nothing is written unless every file is valid.

` + a.credentialsHelp() + `

Examples:
  flagsync sync --sandbox --repo examples/flags
  flagsync sync --repo . --path flags --dry-run`
}

// credentialsHelp says where each service's credentials come from, and what --sandbox
// starts instead.
func (a *app) credentialsHelp() string {
	var lines []string
	for _, p := range a.providers.All() {
		lines = append(lines, p.Help().Credentials+".")
	}
	return strings.Join(lines, "\n") + "\nWith --sandbox, flagsync starts a local sandbox of each service instead."
}

// syncFlags are sync's own flags.
type syncFlags struct {
	dryRun, allowMass, prune bool
	format                   string
	maxChanges, concurrency  int
}

func cmdSync(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("sync", a.syncSynopsis())
	src := a.addSourceFlags(fs)
	conn := a.addConnFlags(fs, a.sandboxUsage(), a.providers.All()...)
	logf := a.addLogFlags(fs)
	a.quietOnTerminal(fs)
	var f syncFlags
	fs.BoolVar(&f.dryRun, "dry-run", false, "compute the plan and go through every step but send no write")
	fs.StringVar(&f.format, "format", "text", "output: text or json")
	fs.Enum("format", "text", "json")
	fs.IntVar(&f.maxChanges, "max-changes", defaultMaxChanges, "refuse to apply a plan with more changes than this (0: no limit)")
	fs.BoolVar(&f.allowMass, "allow-mass-archive", false, "let pruning archive more flags than the mass-archive guard allows")
	fs.BoolVar(&f.prune, "prune", false, "archive managed flags that were removed from Git (also prune: true in flagsync.yaml)")
	fs.IntVar(&f.concurrency, "concurrency", apply.DefaultConcurrency, "flags applied at once (the changes of one flag always go in order)")
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	if f.concurrency < 1 || f.maxChanges < 0 {
		fmt.Fprintln(a.stderr, "flagsync sync: --concurrency must be at least 1 and --max-changes at least 0")
		return exitUsage
	}
	if code := conn.check(a); code >= 0 {
		return code
	}
	logger, err := a.logger(logf)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync sync: %v\n", err)
		return exitUsage
	}
	snap, err := src.open(ctx, logger)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync sync: %v\n", err)
		return exitFail
	}
	in := reconcile.Input{DryRun: f.dryRun, Prune: f.prune, MaxChanges: f.maxChanges, AllowMassArchive: f.allowMass, Concurrency: f.concurrency}
	if f.format == "text" {
		in.OnPlan = func(p plan.Plan) { _ = plan.RenderText(a.stdout, p, plan.TextOptions{Color: a.color()}) }
	}
	rep, conns, err := a.reconcile(ctx, conn, logger, snap, in)
	defer conns.Close()
	return a.finishSync(f.format, rep, conns, err)
}

// finishSync writes what a sync did and returns its exit code.
func (a *app) finishSync(format string, rep *reconcile.Report, conns *provider.Connections, err error) int {
	if format == "json" {
		if werr := report.WriteJSON(a.stdout, rep, err); werr != nil {
			fmt.Fprintf(a.stderr, "flagsync sync: write report: %v\n", werr)
			return exitFail
		}
	} else {
		report.WriteResults(a.stdout, rep)
	}
	if err != nil {
		a.printRunError("sync", err)
		return usageCode(err) // a service's refusal of the connection flags is a usage error
	}
	if format == "text" {
		fmt.Fprintln(a.stdout, report.SummaryLine(rep, report.Summary{
			Where: conns.Where(), Automation: a.providers.Automation(report.NoteServices(rep.Plan))}))
	}
	// Changes awaiting approval in their service are not a failure: the sync did all it
	// could, and a person approves the change request (docs/sync.md).
	if rep.Summary.Failed > 0 || (!rep.DryRun && !rep.Converged && !rep.OnlyAwaitingApproval()) {
		return exitFail
	}
	return exitOK
}

// reconcile runs the sync pipeline on snap with every registered service: one load of
// the files, the connection of the services they need (an embedded sandbox gets the
// environments the loaded files use), then read, plan, guard, apply and confirm. The
// connections are nil when the run stopped before connecting; the caller closes them.
func (a *app) reconcile(ctx context.Context, conn *connFlags, logger *slog.Logger, snap *snapshot, in reconcile.Input) (*reconcile.Report, *provider.Connections, error) {
	var calls atomic.Int64
	var conns *provider.Connections
	in.Revision, in.FS, in.Dir, in.Cache = snap.Revision, snap.FS, snap.Dir, snap.Cache
	in.Vendors, in.Calls, in.Logger = a.providers.FileVendors(), calls.Load, logger
	opts := conn.options(a, func(api.CallInfo) { calls.Add(1) }, logger.With("revision", snap.Revision))
	in.Connect = func(ctx context.Context, l *reconcile.Loaded) ([]reconcile.Vendor, error) {
		var err error
		if conns, err = a.providers.Connect(ctx, l, opts); err != nil {
			return nil, err
		}
		return conns.Vendors, nil
	}
	rep, err := reconcile.Run(ctx, in)
	return rep, conns, err
}

// printRunError explains on stderr why a run stopped before or instead of applying.
func (a *app) printRunError(cmd string, err error) {
	var invalid *diag.InvalidError
	var tooMany *reconcile.TooManyChangesError
	var mass *plan.MassArchiveError
	switch {
	case errors.As(err, &invalid):
		for _, d := range invalid.Diagnostics {
			fmt.Fprintln(a.stderr, d.String())
		}
		fmt.Fprintf(a.stderr, "flagsync %s: %s in %s: nothing was read from or written to the API\n",
			cmd, plural(len(invalid.Diagnostics), "problem"), plural(invalid.FileCount(), "file"))
	case errors.As(err, &tooMany):
		fmt.Fprintf(a.stderr, "flagsync %s: %v (raise --max-changes, or set it to 0 for no limit)\n", cmd, err)
	case errors.As(err, &mass):
		fmt.Fprintf(a.stderr, "flagsync %s: %v; nothing was applied (pass --allow-mass-archive if this is intended)\n", cmd, err)
	default:
		fmt.Fprintf(a.stderr, "flagsync %s: %v\n", cmd, err)
	}
}
