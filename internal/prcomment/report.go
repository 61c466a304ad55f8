package prcomment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/flagsync/flagsync/internal/codehost"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Conclusion is how a plan ends on the commit.
type Conclusion string

// Conclusions.
const (
	// Success: the files are valid and the plan holds every change Git asks for (or none).
	Success Conclusion = "success"
	// Neutral: the plan holds changes the planner refuses, so the service will still
	// differ from Git after it is applied. GitHub counts it as passing; GitLab's
	// statuses, which have no such state, show success.
	Neutral Conclusion = "neutral"
	// Failure: the flag files are invalid, or there is no plan at all.
	Failure Conclusion = "failure"
)

// Annotation points at a line of a flag file.
type Annotation struct {
	File    string // relative to the repository root, slash-separated
	Line    int    // 1-based
	Column  int    // 1-based; 0 when unknown
	Level   string // codehost.AnnotationFailure or codehost.AnnotationWarning
	Title   string
	Message string
}

// Report is a plan's outcome as a commit shows it: a conclusion, a one-line title (the
// plan's summary line, or the count of problems), a Markdown summary for when there is
// no Markdown plan, and annotations on the files of an invalid or refused plan.
type Report struct {
	Conclusion  Conclusion
	Title       string
	Markdown    string
	Annotations []Annotation
}

// Inputs are what a report is made from: the files the plan job wrote. Neither needs a
// call to the flag service.
type Inputs struct {
	// PlanJSON is what `flagsync plan --json-out` wrote: a plan, or, when the files are
	// invalid, {"revision", "diagnostics"}. Nil when plan wrote none (it did not finish).
	PlanJSON []byte
	// ValidateJSON is what `flagsync validate --format json` printed; nil when not run.
	ValidateJSON []byte
	// Locate says where each flag of the repository is defined, to annotate the refused
	// changes of a plan; nil leaves them unannotated (they are still listed).
	Locate map[plan.Address]reconcile.FlagFile
	// JobURL links the job's log from the report of a plan that did not finish; optional.
	JobURL string
}

// planDoc is what a report needs of plan --json-out's output (see plan.RenderJSON).
type planDoc struct {
	FormatVersion int           `json:"format_version"`
	Revision      string        `json:"revision"`
	Summary       *plan.Summary `json:"summary"`
	Changes       []struct {
		Action plan.Action `json:"action"`
	} `json:"changes"`
	Unmanaged   []plan.Address     `json:"unmanaged"`
	Blocked     []plan.Blocked     `json:"blocked"`
	Service     string             `json:"service"`
	Diagnostics *[]diag.Diagnostic `json:"diagnostics"`
}

// validateDoc is validate --format json's report.
type validateDoc struct {
	Valid       *bool             `json:"valid"`
	Files       int               `json:"files"`
	Diagnostics []diag.Diagnostic `json:"diagnostics"`
}

// NewReport reads the plan job's files into a Report. Invalid files (in either input)
// make a failure with an annotation per problem; a plan makes success, or neutral when
// it has refused changes, titled with the plan's summary line; no plan and no problem
// make a failure that says the plan did not finish.
func NewReport(in Inputs) (Report, error) {
	var diags []diag.Diagnostic
	invalid := false
	if len(bytes.TrimSpace(in.ValidateJSON)) > 0 {
		var v validateDoc
		if err := json.Unmarshal(in.ValidateJSON, &v); err != nil || v.Valid == nil {
			return Report{}, fmt.Errorf("read the validate report: not the output of flagsync validate --format json (%v)", errOr(err, "no \"valid\" key"))
		}
		if !*v.Valid {
			invalid = true
			diags = append(diags, v.Diagnostics...)
		}
	}
	var p *plan.Plan
	if len(bytes.TrimSpace(in.PlanJSON)) > 0 {
		var d planDoc
		if err := json.Unmarshal(in.PlanJSON, &d); err != nil || d.Summary == nil && d.Diagnostics == nil {
			return Report{}, fmt.Errorf("read the JSON plan: not the output of flagsync plan --json-out (%v)", errOr(err, "neither \"summary\" nor \"diagnostics\""))
		}
		switch {
		case d.Diagnostics != nil:
			invalid = true
			diags = append(diags, *d.Diagnostics...)
		case d.FormatVersion != plan.JSONFormatVersion:
			return Report{}, fmt.Errorf("read the JSON plan: format_version %d, and this flagsync reads %d: write the plan with the same flagsync version (see docs/plan.md for the migration)",
				d.FormatVersion, plan.JSONFormatVersion)
		default:
			p = d.plan()
		}
	}
	switch {
	case invalid:
		return invalidReport(diags), nil
	case p != nil:
		return planReport(*p, in.Locate), nil
	}
	md := "### flagsync plan did not finish\n\nNo plan was written, and the flag files are not known to be invalid: see the job's log"
	if in.JobURL != "" {
		md += " (" + in.JobURL + ")"
	}
	return Report{Conclusion: Failure, Title: "flagsync plan did not finish: no plan was written", Markdown: md + ".\n"}, nil
}

func errOr(err error, msg string) string {
	if err != nil {
		return err.Error()
	}
	return msg
}

// plan rebuilds as much of the plan as its summary line needs.
func (d planDoc) plan() *plan.Plan {
	p := &plan.Plan{Revision: d.Revision, Unmanaged: d.Unmanaged, Blocked: d.Blocked, Service: d.Service}
	for _, c := range d.Changes {
		p.Changes = append(p.Changes, plan.Change{Action: c.Action})
	}
	return p
}

// invalidReport reports invalid files: every problem once, in file and line order.
func invalidReport(diags []diag.Diagnostic) Report {
	seen := map[string]bool{}
	var uniq []diag.Diagnostic
	files := map[string]bool{}
	for _, d := range diags {
		if k := d.String(); !seen[k] {
			seen[k] = true
			uniq = append(uniq, d)
			files[d.File] = true
		}
	}
	diag.SortDiagnostics(uniq)
	r := Report{
		Conclusion: Failure,
		Title:      fmt.Sprintf("The flag files are invalid: %s in %s", count(len(uniq), "problem"), count(len(files), "file")),
	}
	var b strings.Builder
	what := "these " + count(len(uniq), "problem") + " are"
	if len(uniq) == 1 {
		what = "this problem is"
	}
	fmt.Fprintf(&b, "### flagsync: the flag files are invalid\n\nNothing will be applied until %s fixed:\n\n```\n", what)
	for _, d := range uniq {
		b.WriteString(d.String() + "\n")
		msg := d.Message
		if d.Field != "" {
			msg = d.Field + ": " + msg
		}
		r.Annotations = append(r.Annotations, Annotation{
			File: d.File, Line: max(d.Line, 1), Column: d.Column, Level: codehost.AnnotationFailure,
			Title: "flagsync: invalid flag file", Message: msg,
		})
	}
	b.WriteString("```\n")
	r.Markdown = b.String()
	return r
}

// planReport reports a plan: its summary line, and its refused changes, annotated on
// the flag's file where locate knows it.
func planReport(p plan.Plan, locate map[plan.Address]reconcile.FlagFile) Report {
	r := Report{Conclusion: Success, Title: p.SummaryLine()}
	var b strings.Builder
	b.WriteString("### flagsync plan")
	if p.Revision != "" {
		b.WriteString(" for `" + plan.ShortRevision(p.Revision) + "`")
	}
	b.WriteString("\n\n**" + r.Title + "**\n")
	if len(p.Blocked) > 0 {
		r.Conclusion = Neutral
		fmt.Fprintf(&b, "\nChanges flagsync refuses to make; %s will still differ from Git after this plan:\n\n", p.ServiceName())
		for _, bl := range p.Blocked {
			fmt.Fprintf(&b, "- `%s`: %s\n", bl.Flag(), bl.Reason)
			src, ok := locate[bl.Flag()]
			if !ok || src.File == "" {
				continue
			}
			r.Annotations = append(r.Annotations, Annotation{
				File: src.File, Line: max(src.Line, 1), Level: codehost.AnnotationWarning,
				Title: "flagsync: change refused", Message: bl.Reason,
			})
		}
	}
	r.Markdown = b.String()
	return r
}

// count renders "1 problem", "2 problems".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
