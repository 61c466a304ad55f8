package prcomment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/flagsync/flagsync/internal/codehost"
)

// Names the plan's status is shown under: a check run on GitHub, a commit status's
// context on GitHub and its name on GitLab. A later run replaces the earlier one.
const (
	CheckRunName  = "flagsync plan"
	StatusContext = "flagsync/plan"
)

// MaxAnnotations bounds the annotations of one check run (ten requests); the summary
// still lists every problem.
const MaxAnnotations = 10 * codehost.MaxAnnotationsPerRequest

// Status kinds.
const (
	KindCheckRun     = "check run"
	KindCommitStatus = "commit status"
)

// StatusResult says what Publish set.
type StatusResult struct {
	Kind  string // KindCheckRun or KindCommitStatus
	State string // the conclusion or state as the host names it
	// ID is the check run's id; 0 for a commit status.
	ID int64
	// Annotations is how many annotations the check run carries.
	Annotations int
	// Refused is GitHub's refusal of the check run, when a commit status was set
	// instead.
	Refused error
}

// Publish shows the report on the target's commit: on GitHub a check run (title, the
// Markdown summary, annotations), or a commit status when GitHub refuses the check run
// (a personal token, or a GITHUB_TOKEN without checks: write); on GitLab a commit status.
// summary is the Markdown to show (the plan's comment); empty uses the report's own.
func Publish(ctx context.Context, hc *http.Client, t Target, rep Report, summary string, logger *slog.Logger) (StatusResult, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if t.SHA == "" {
		return StatusResult{}, errors.New("no commit to set the status on")
	}
	if strings.TrimSpace(summary) == "" {
		summary = rep.Markdown
	}
	h, err := t.host(hc)
	if err != nil {
		return StatusResult{}, err
	}
	if h.gl != nil {
		state := codehost.GitLabStatusSuccess
		if rep.Conclusion == Failure {
			state = codehost.GitLabStatusFailed
		}
		err := h.gl.SetCommitStatus(ctx, t.Repo, t.SHA, codehost.GitLabStatus{
			State: state, Name: StatusContext, Description: rep.Title, TargetURL: t.TargetURL, PipelineID: t.PipelineID,
		})
		return StatusResult{Kind: KindCommitStatus, State: state}, err
	}

	anns := make([]codehost.Annotation, 0, min(len(rep.Annotations), MaxAnnotations))
	for _, a := range rep.Annotations[:min(len(rep.Annotations), MaxAnnotations)] {
		ca := codehost.Annotation{
			Path: a.File, StartLine: a.Line, EndLine: a.Line, AnnotationLevel: a.Level, Title: a.Title, Message: a.Message,
		}
		if a.Column > 0 {
			ca.StartColumn, ca.EndColumn = a.Column, a.Column
		}
		anns = append(anns, ca)
	}
	if n := len(rep.Annotations) - len(anns); n > 0 {
		summary += fmt.Sprintf("\n\n> [!NOTE]\n> Only the first %d problems are annotated on their lines; %d more are listed above.\n", len(anns), n)
	}
	id, _, err := h.gh.CreateCheckRun(ctx, t.Repo, codehost.CheckRun{
		Name: CheckRunName, HeadSHA: t.SHA, Conclusion: string(rep.Conclusion), DetailsURL: t.TargetURL,
		Output: codehost.CheckRunOutput{Title: rep.Title, Summary: stripMarker(summary), Annotations: anns},
	})
	if err == nil {
		return StatusResult{Kind: KindCheckRun, State: string(rep.Conclusion), ID: id, Annotations: len(anns)}, nil
	}
	if id != 0 || !codehost.IsStatus(err, http.StatusForbidden) {
		return StatusResult{Kind: KindCheckRun, State: string(rep.Conclusion), ID: id}, err
	}
	logger.Warn("GitHub refused the check run (it needs an installation token with checks: write); setting a commit status instead, without annotations",
		"err", err)
	state := codehost.StatusSuccess
	if rep.Conclusion == Failure {
		state = codehost.StatusFailure
	}
	serr := h.gh.CreateStatus(ctx, t.Repo, t.SHA, codehost.Status{
		State: state, TargetURL: t.TargetURL, Description: rep.Title, Context: StatusContext,
	})
	if serr != nil {
		serr = fmt.Errorf("%w (after the check run was refused: %v)", serr, err)
	}
	return StatusResult{Kind: KindCommitStatus, State: state, Refused: err}, serr
}

// stripMarker drops the hidden marker line a Markdown plan starts with: it marks the
// comment, and has no use in a check run.
func stripMarker(md string) string {
	first, rest, found := strings.Cut(md, "\n")
	if found && strings.HasPrefix(first, "<!--") && strings.HasSuffix(strings.TrimSpace(first), "-->") {
		return rest
	}
	return md
}
