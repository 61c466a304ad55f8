package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// WriteResults prints one line per change that was applied, failed or skipped, and what
// remains when the service still differs afterwards.
func WriteResults(w io.Writer, rep *reconcile.Report) {
	if rep == nil || len(rep.Results) == 0 {
		return
	}
	fmt.Fprintln(w)
	if rep.DryRun {
		fmt.Fprintf(w, "Dry run: %d changes not sent.\n", len(rep.Results))
		return
	}
	fmt.Fprintln(w, "Results:")
	for _, r := range rep.Results {
		line := fmt.Sprintf("  %-8s %-8s %s", r.Status, r.Change.Action, target(r.Change))
		switch {
		case r.Err != nil:
			line += ": " + r.Err.Error()
		case r.Note != "":
			line += " (" + r.Note + ")"
		}
		fmt.Fprintln(w, line)
	}
	if !rep.Verified || len(rep.Remaining) == 0 {
		return
	}
	held := rep.AwaitingFlags()
	var waiting, other []plan.Change
	for _, c := range rep.Remaining {
		if _, ok := held[c.Flag()]; ok {
			waiting = append(waiting, c)
		} else {
			other = append(other, c)
		}
	}
	if len(other) > 0 {
		fmt.Fprintf(w, "\nStill different after applying (%d changes; changed by someone else meanwhile, or refused):\n", len(other))
		for _, c := range other {
			fmt.Fprintf(w, "  %-8s %s: %s\n", c.Action, target(c), c.Reason)
		}
	}
	if len(waiting) > 0 {
		fmt.Fprintf(w, "\nAwaiting approval (%d changes; applied by the service once a person approves them):\n", len(waiting))
		for _, c := range waiting {
			fmt.Fprintf(w, "  %-8s %s: %s\n", c.Action, target(c), c.Reason)
		}
	}
}

// target names what a change touches: scope/key, or scope/key/environment.
func target(c plan.Change) string {
	if c.Environment != "" {
		return c.Flag().String() + "/" + c.Environment
	}
	return c.Flag().String()
}

// Summary is what the summary line says beyond the report.
type Summary struct {
	// Where the sync went, for people: "the sandbox (.flagsync/sandbox.json)".
	Where string
	// Automation names who else changes the flags the plan's notes are about
	// ("Kameleoon's automation"); empty, the notes are said to be owned outside Git.
	Automation string
}

// SummaryLine is the one line a sync ends with.
func SummaryLine(rep *reconcile.Report, s Summary) string {
	var b strings.Builder
	b.WriteString("Sync")
	if rep.DryRun {
		b.WriteString(" (dry run)")
	}
	if rep.Revision != "" {
		b.WriteString(" of " + plan.ShortRevision(rep.Revision))
	}
	b.WriteString(" to " + s.Where + ": ")
	switch {
	case len(rep.Plan.Changes) == 0 && len(rep.Refused)+len(rep.AwaitingApproval) > 0:
		fmt.Fprintf(&b, "nothing to apply; NOT converged (%s)", rep.NotConverged())
	case len(rep.Plan.Changes) == 0:
		b.WriteString("already in sync")
	case rep.DryRun:
		fmt.Fprintf(&b, "%d changes not sent", len(rep.Plan.Changes))
	default:
		b.WriteString(rep.Summary.String())
		switch {
		case rep.Converged:
			b.WriteString("; converged")
		case rep.Verified || len(rep.Refused)+rep.AwaitingApprovalCount() > 0:
			fmt.Fprintf(&b, "; NOT converged (%s)", rep.NotConverged())
		default:
			b.WriteString("; convergence not confirmed")
		}
	}
	if n := len(rep.Plan.Notes); n > 0 {
		owner := "owned outside Git"
		if s.Automation != "" {
			owner += " or by " + s.Automation
		}
		fmt.Fprintf(&b, "; %s left alone (%s)", Plural(n, "difference"), owner)
	}
	fmt.Fprintf(&b, "; %d API calls", rep.APICalls)
	if p := rep.Plan.Price; p != nil && int64(p.Calls) != rep.APICalls && rep.APICalls > 0 {
		// The price is what the plan said the sync would spend: say when it spent
		// otherwise (a retry, a token renewed, a write whose answer was lost).
		fmt.Fprintf(&b, " (the plan priced %d)", p.Calls)
	}
	fmt.Fprintf(&b, " in %s.", rep.Duration.Round(time.Millisecond))
	return b.String()
}

// NoteServices are the services the plan's notes are about, in order of first note.
func NoteServices(p plan.Plan) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range p.Notes {
		if s := n.Service; !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// WriteJSON writes the report (and the error that stopped the run, if any) as one JSON
// document.
func WriteJSON(w io.Writer, rep *reconcile.Report, runErr error) error {
	out := struct {
		*reconcile.Report
		DurationMS int64  `json:"durationMs"`
		Error      string `json:"error,omitempty"`
	}{Report: rep}
	if rep == nil {
		out.Report = &reconcile.Report{}
	}
	out.DurationMS = out.Report.Duration.Milliseconds()
	var invalid *diag.InvalidError
	if runErr != nil && !errors.As(runErr, &invalid) {
		out.Error = runErr.Error()
	} else if runErr != nil {
		out.Error = "the flag files are invalid"
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// WritePlan renders a plan in a plan command's format: text (in colour when color),
// markdown (a pull-request comment) or json.
func WritePlan(w io.Writer, format string, p plan.Plan, color bool) error {
	switch format {
	case "markdown":
		return plan.RenderMarkdown(w, p, plan.MarkdownOptions{})
	case "json":
		return plan.RenderJSON(w, p)
	}
	return plan.RenderText(w, p, plan.TextOptions{Color: color})
}

// WriteDiagnostics writes invalid files' problems in a plan's output format, markdown or
// json (nothing for text, whose problems go to stderr): a pull-request comment must say
// why there is no plan.
func WriteDiagnostics(w io.Writer, format string, rep *reconcile.Report) {
	switch format {
	case "markdown":
		fmt.Fprintln(w, plan.MarkdownMarker)
		fmt.Fprintf(w, "### flagsync: the flag files are invalid\n\nNothing will be applied until these %s are fixed:\n\n```\n", Plural(len(rep.Diagnostics), "problem"))
		for _, d := range rep.Diagnostics {
			fmt.Fprintln(w, d.String())
		}
		fmt.Fprintln(w, "```")
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		// The plan's format_version: schema/plan.schema.json describes both documents.
		_ = enc.Encode(struct {
			FormatVersion int               `json:"format_version"`
			Revision      string            `json:"revision"`
			Diagnostics   []diag.Diagnostic `json:"diagnostics"`
		}{plan.JSONFormatVersion, rep.Revision, rep.Diagnostics})
	}
}

// Plural renders "1 file", "2 files".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
