package prcomment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Options are one report of a plan on its request: what to post, and where.
type Options struct {
	Target Target
	// Marker finds the comment again (plan.MarkdownMarker).
	Marker string
	// Markdown is the plan comment (plan --format markdown). When it is blank and a
	// status is asked for, the plan did not finish: its JSON plan, if any, is ignored
	// and the report's own Markdown is posted instead, so that the last push's plan is
	// not left standing unexplained.
	Markdown string
	// Comment asks for the comment; Status for the check run or commit status, made
	// from Inputs.
	Comment, Status bool
	Inputs          Inputs
	// HTTPClient is used for every call; nil gets one with codehost.DefaultTimeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Outcome says what Post did; a nil part was not asked for or failed.
type Outcome struct {
	Report  *Report
	Status  *StatusResult
	Comment *CommentResult
}

// Post sets the status (when asked) and then the comment (when asked). It does both
// even when one fails, and returns every error, joined.
func Post(ctx context.Context, o Options) (Outcome, error) {
	var out Outcome
	markdown := o.Markdown
	if o.Status {
		in := o.Inputs
		if o.Comment && strings.TrimSpace(markdown) == "" && len(in.PlanJSON) > 0 {
			// plan writes its Markdown whenever it has a plan (or a problem list), but a
			// run that failed reading the service leaves it empty while --json-out still
			// holds an empty plan: that is no plan, not "no changes".
			if o.Logger != nil {
				o.Logger.Warn("the Markdown plan is empty: the plan did not finish, its JSON plan is not used")
			}
			in.PlanJSON = nil
		}
		rep, err := NewReport(in)
		if err != nil {
			return out, err
		}
		out.Report = &rep
		if strings.TrimSpace(markdown) == "" {
			markdown = rep.Markdown
		}
	}
	var errs []error
	if o.Status {
		res, err := Publish(ctx, o.HTTPClient, o.Target, *out.Report, markdown, o.Logger)
		if err != nil {
			errs = append(errs, fmt.Errorf("set the plan's status on %s: %w", o.Target.SHA, err))
		} else {
			out.Status = &res
		}
	}
	if o.Comment {
		if strings.TrimSpace(markdown) == "" {
			errs = append(errs, errors.New("the plan comment is empty and there is no report to post instead"))
		} else if res, err := Upsert(ctx, o.HTTPClient, o.Target, o.Marker, markdown, o.Logger); err != nil {
			errs = append(errs, fmt.Errorf("comment on %s: %w", o.Target.Request(), err))
		} else {
			out.Comment = &res
		}
	}
	return out, errors.Join(errs...)
}
