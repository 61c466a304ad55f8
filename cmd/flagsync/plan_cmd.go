package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/report"
)

const planSynopsis = `Usage: flagsync plan [flags]

Loads and validates the flag files, reads the live flags (listed, never read one by one)
and prints the changes a sync would make. Writes nothing.

Exit codes: 0 no changes (or changes, without --detailed-exitcode), 2 changes or
changes the planner refuses (with --detailed-exitcode), 1 error or invalid files (the
problems are printed), 64 usage.

Examples:
  flagsync plan --sandbox --repo examples/flags
  flagsync plan --path flags --format markdown --out plan.md --detailed-exitcode
  flagsync plan --path flags --format markdown --out plan.md --json-out plan.json`

// planFlags are plan's own flags.
type planFlags struct {
	format, outPath, jsonOut string
	detailed, prune          bool
}

func cmdPlan(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("plan", planSynopsis)
	src := a.addSourceFlags(fs)
	conn := a.addConnFlags(fs, a.sandboxUsage(), a.providers.All()...)
	logf := a.addLogFlags(fs)
	a.quietOnTerminal(fs)
	var f planFlags
	fs.StringVar(&f.format, "format", "text", "output: text, markdown (a pull-request comment) or json")
	fs.Enum("format", "text", "markdown", "json")
	fs.BoolVar(&f.detailed, "detailed-exitcode", false, "exit 2 when the plan has changes")
	fs.StringVar(&f.outPath, "out", "", "write the plan to this file instead of stdout")
	fs.StringVar(&f.jsonOut, "json-out", "", "also write the plan as JSON to this file (one live read for a PR comment and its artifact)")
	fs.BoolVar(&f.prune, "prune", false, "plan archiving managed flags that were removed from Git (also prune: true in flagsync.yaml)")
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	if code := conn.check(a); code >= 0 {
		return code
	}
	logger, err := a.logger(logf)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync plan: %v\n", err)
		return exitUsage
	}
	snap, err := src.open(ctx, logger)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync plan: %v\n", err)
		return exitFail
	}
	// A plan is a dry run of the sync pipeline: the same load, read, plan and guards,
	// with every write skipped.
	rep, conns, runErr := a.reconcile(ctx, conn, logger, snap, reconcile.Input{DryRun: true, Prune: f.prune})
	defer conns.Close()
	if err := a.writePlan(f, rep, runErr); err != nil {
		fmt.Fprintf(a.stderr, "flagsync plan: %v\n", err)
		return exitFail
	}
	// Archives the mass-archive guard refuses are refused changes, shown in the plan like
	// every other refusal, not an error of the plan command: the plan was computed and
	// shown. A sync of the same plan applies nothing (see docs/sync.md).
	var mass *plan.MassArchiveError
	if errors.As(runErr, &mass) {
		fmt.Fprintf(a.stderr, "flagsync plan: %v; a sync of this plan applies nothing (give sync --allow-mass-archive if this is intended)\n", mass)
		runErr = nil
	}
	if runErr != nil {
		a.printRunError("plan", runErr)
		return usageCode(runErr) // a service's refusal of the connection flags is a usage error
	}
	// Refused changes count: Git and the service still differ.
	if f.detailed && (len(rep.Plan.Changes) > 0 || len(rep.Plan.Blocked) > 0) {
		return exitChanges
	}
	return exitOK
}

// writePlan writes the plan (or the invalid files' problems) in the output format, and
// to --json-out. A plan refused by a guard is still shown, so people see what was
// refused; a run that stopped before planning writes no plan.
func (a *app) writePlan(f planFlags, rep *reconcile.Report, runErr error) error {
	var invalid *diag.InvalidError
	isInvalid := errors.As(runErr, &invalid)
	planned := runErr == nil || len(rep.Plan.Changes) > 0 || len(rep.Plan.Blocked) > 0
	var out bytes.Buffer
	switch {
	case isInvalid:
		report.WriteDiagnostics(&out, f.format, rep)
	case planned:
		if err := report.WritePlan(&out, f.format, rep.Plan, a.color() && f.outPath == ""); err != nil {
			return fmt.Errorf("render: %w", err)
		}
	}
	if err := a.writeOutput(f.outPath, out.Bytes()); err != nil {
		return err
	}
	if f.jsonOut == "" || !(isInvalid || planned) {
		return nil
	}
	var js bytes.Buffer
	if isInvalid {
		report.WriteDiagnostics(&js, "json", rep)
	} else if err := plan.RenderJSON(&js, rep.Plan); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	if err := os.WriteFile(f.jsonOut, js.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write --json-out: %w", err)
	}
	return nil
}

// writeOutput writes b to path, or to stdout when path is empty.
func (a *app) writeOutput(path string, b []byte) error {
	if path == "" {
		_, err := a.stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write --out: %w", err)
	}
	return nil
}
