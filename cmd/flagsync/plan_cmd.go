package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

const planSynopsis = `Usage: flagsync plan [flags]

Loads and validates the flag files, reads the live flags (one list call per site) and
prints the changes a sync would make. Writes nothing.

Exit codes: 0 no changes (or changes, without --detailed-exitcode), 2 changes or
changes the planner refuses (with --detailed-exitcode), 1 error or invalid files (the
problems are printed), 64 usage.

Examples:
  flagsync plan --sandbox --repo examples/flags
  flagsync plan --path flags --format markdown --out plan.md --detailed-exitcode
  flagsync plan --path flags --format markdown --out plan.md --json-out plan.json`

func cmdPlan(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("plan", planSynopsis)
	src := a.addSourceFlags(fs)
	conn := a.addAPIFlags(fs)
	logf := a.addLogFlags(fs)
	a.quietOnTerminal(fs)
	format := fs.String("format", "text", "output: text, markdown (a pull-request comment) or json")
	detailed := fs.Bool("detailed-exitcode", false, "exit 2 when the plan has changes")
	outPath := fs.String("out", "", "write the plan to this file instead of stdout")
	jsonOut := fs.String("json-out", "", "also write the plan as JSON to this file (one live read for a PR comment and its artifact)")
	prune := fs.Bool("prune", false, "plan archiving managed flags that were removed from Git (also prune: true in flagsync.yaml)")
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	switch *format {
	case "text", "markdown", "json":
	default:
		fmt.Fprintf(a.stderr, "flagsync plan: --format %q: want text, markdown or json\n", *format)
		return exitUsage
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
	client, err := conn.connect(a, logger, snap)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync plan: %v\n", err)
		return exitFail
	}
	defer client.close()

	// A plan is a dry run of the sync pipeline: the same load, read, plan and guards,
	// with every write skipped.
	rep, runErr := reconcile.Run(ctx, reconcile.Input{
		Revision: snap.Revision, FS: snap.FS, Dir: snap.Dir, Vendors: client.vendors,
		DryRun: true, Prune: *prune, Calls: client.calls.Load, Logger: logger,
	})

	var out bytes.Buffer
	var invalid *diag.InvalidError
	if errors.As(runErr, &invalid) {
		renderDiagnostics(&out, *format, rep)
	} else if rep != nil && (runErr == nil || len(rep.Plan.Changes) > 0 || len(rep.Plan.Blocked) > 0) {
		// A plan refused by a guard is still shown, so people see what was refused.
		if err := renderPlan(&out, *format, rep.Plan, a.isTTY && *outPath == ""); err != nil {
			fmt.Fprintf(a.stderr, "flagsync plan: render: %v\n", err)
			return exitFail
		}
	}
	if err := a.writeOutput(*outPath, out.Bytes()); err != nil {
		fmt.Fprintf(a.stderr, "flagsync plan: %v\n", err)
		return exitFail
	}
	if *jsonOut != "" && rep != nil {
		var js bytes.Buffer
		if errors.As(runErr, &invalid) {
			renderDiagnostics(&js, "json", rep)
		} else if err := plan.RenderJSON(&js, rep.Plan); err != nil {
			fmt.Fprintf(a.stderr, "flagsync plan: render: %v\n", err)
			return exitFail
		}
		if err := os.WriteFile(*jsonOut, js.Bytes(), 0o644); err != nil {
			fmt.Fprintf(a.stderr, "flagsync plan: write --json-out: %v\n", err)
			return exitFail
		}
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
		return exitFail
	}
	// Refused changes count: Git and Kameleoon still differ.
	if *detailed && (len(rep.Plan.Changes) > 0 || len(rep.Plan.Blocked) > 0) {
		return exitChanges
	}
	return exitOK
}

func renderPlan(w io.Writer, format string, p plan.Plan, color bool) error {
	switch format {
	case "markdown":
		return plan.RenderMarkdown(w, p, plan.MarkdownOptions{})
	case "json":
		return plan.RenderJSON(w, p)
	}
	return plan.RenderText(w, p, plan.TextOptions{Color: color})
}

// renderDiagnostics writes invalid files' problems in the output format (they also go
// to stderr): a pull-request comment must say why there is no plan.
func renderDiagnostics(w io.Writer, format string, rep *reconcile.Report) {
	switch format {
	case "markdown":
		fmt.Fprintln(w, plan.MarkdownMarker)
		fmt.Fprintf(w, "### flagsync: the flag files are invalid\n\nNothing will be applied until these %s are fixed:\n\n```\n", plural(len(rep.Diagnostics), "problem"))
		for _, d := range rep.Diagnostics {
			fmt.Fprintln(w, d.String())
		}
		fmt.Fprintln(w, "```")
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(struct {
			Revision    string            `json:"revision"`
			Diagnostics []diag.Diagnostic `json:"diagnostics"`
		}{rep.Revision, rep.Diagnostics})
	}
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
