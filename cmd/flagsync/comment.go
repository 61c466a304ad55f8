package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/flagsync/flagsync/internal/codehost"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/prcomment"
)

const commentSynopsis = `Usage: flagsync comment [--file PLAN.md] [--plan-json PLAN.json] [--validate-json REPORT.json] [flags]

Reports a plan on its pull request (GitHub) or merge request (GitLab):

--file posts the Markdown plan as a comment, or updates the comment flagsync posted
before: the one carrying the plan's hidden marker AND written by the account the token
belongs to (a comment with the marker written by anyone else is never modified).

--plan-json and --validate-json (the files plan --json-out and validate --format json
wrote) set the plan's status on the request's head commit: on GitHub a check run
"flagsync plan" with the summary line, the Markdown and an annotation on each problem's
line (a commit status "flagsync/plan" when the token may not create check runs); on
GitLab a commit status "flagsync/plan". A plan JSON that does not exist counts as a plan
that did not finish. No call is made to any flag service.

In GitHub Actions and GitLab CI everything else is read from the job's environment:
GITHUB_API_URL, GITHUB_REPOSITORY, the pull request's number and head commit from
GITHUB_EVENT_PATH, GITHUB_TOKEN; or CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID,
CI_COMMIT_SHA, CI_JOB_URL, CI_PIPELINE_ID and GITLAB_TOKEN. FLAGSYNC_COMMENT_TOKEN (or
_FILE) overrides the token. The token's account is asked of the host (GET /user);
Actions' own GITHUB_TOKEN, which may not ask, writes as github-actions[bot]; another
GitHub App's installation token needs --author APP-SLUG[bot].

Examples:
  flagsync plan --path flags --format markdown --out plan.md --json-out plan.json
  flagsync comment --file plan.md --plan-json plan.json --path flags`

// commentFlags are what cmdComment was asked, before the CI environment fills the rest.
type commentFlags struct {
	file, planJSON, validateJSON, path          string
	provider, slug, apiURL, author, sha, jobURL string
	number                                      int
}

// cmdComment reports a plan on its pull or merge request: the one living comment, and a
// check run or commit status.
func cmdComment(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("comment", commentSynopsis)
	var f commentFlags
	fs.StringVar(&f.file, "file", "", "Markdown plan `FILE` to post as the comment (written by plan --format markdown --out)")
	fs.StringVar(&f.planJSON, "plan-json", "", "JSON plan `FILE` to set the commit's status from (written by plan --json-out)")
	fs.StringVar(&f.validateJSON, "validate-json", "", "validate report `FILE` to set the commit's status from (printed by validate --format json)")
	fs.SetEnvPrefix("FLAGSYNC_COMMENT_")
	fs.StringVar(&f.path, "path", "", "`DIR` of flag files, relative to the current directory, to annotate refused changes on their flag's file")
	fs.Env("path", "FLAGSYNC_PATH")
	fs.StringVar(&f.provider, "provider", "", "github or gitlab (default: detected from the CI environment)")
	fs.StringVar(&f.slug, "repo-slug", "", "owner/name on GitHub, project id or path on GitLab (default: from the CI environment)")
	fs.IntVar(&f.number, "number", 0, "pull request number or merge request iid (default: from the CI environment)")
	fs.StringVar(&f.apiURL, "api-url", "", "the Git host's API base URL (default: from the CI environment)")
	fs.StringVar(&f.author, "author", "", "`LOGIN` whose comment is flagsync's, instead of asking the host whose the token is")
	fs.StringVar(&f.sha, "sha", "", "commit `SHA` to set the status on (default: the pull request's head commit, or CI_COMMIT_SHA)")
	fs.StringVar(&f.jobURL, "target-url", "", "`URL` the status links to, the CI run's (default: from the CI environment)")
	logf := a.addLogFlags(fs)
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	status := f.planJSON != "" || f.validateJSON != ""
	if f.file == "" && !status {
		fmt.Fprintln(a.stderr, "flagsync comment: give --file, or --plan-json / --validate-json, or both")
		return exitUsage
	}
	logger, err := a.logger(logf)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync comment: %v\n", err)
		return exitUsage
	}
	t, err := a.commentTarget(f, status)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync comment: %v\n", err)
		return exitUsage
	}
	opts := prcomment.Options{Target: t, Marker: plan.MarkdownMarker, Comment: f.file != "", Status: status, Logger: logger}
	opts.Inputs.JobURL = t.TargetURL
	var body, planJSON, validateJSON []byte
	for _, in := range []struct {
		path     string
		dst      *[]byte
		optional bool // missing means "not written", not a mistake
	}{{f.file, &body, false}, {f.planJSON, &planJSON, true}, {f.validateJSON, &validateJSON, false}} {
		if in.path == "" {
			continue
		}
		b, err := os.ReadFile(in.path)
		if err != nil && !(in.optional && errors.Is(err, os.ErrNotExist)) {
			fmt.Fprintf(a.stderr, "flagsync comment: %v\n", err)
			return exitFail
		}
		*in.dst = b
	}
	opts.Markdown, opts.Inputs.PlanJSON, opts.Inputs.ValidateJSON = string(body), planJSON, validateJSON
	if status && f.path != "" {
		if opts.Inputs.Locate, err = prcomment.LocateFlags(a.providers.FileVendors(), os.DirFS("."), f.path); err != nil {
			logger.Warn("refused changes are not annotated: the flag files could not be read", "path", f.path, "err", err)
		}
	}

	out, err := prcomment.Post(ctx, opts)
	if s := out.Status; s != nil {
		switch {
		case s.Kind == prcomment.KindCheckRun:
			fmt.Fprintf(a.stdout, "check run %d %q on %s: %s, %d annotations\n", s.ID, prcomment.CheckRunName, plan.ShortRevision(t.SHA), s.State, s.Annotations)
		default:
			fmt.Fprintf(a.stdout, "commit status %q on %s: %s\n", prcomment.StatusContext, plan.ShortRevision(t.SHA), s.State)
		}
	}
	if c := out.Comment; c != nil {
		fmt.Fprintf(a.stdout, "%s plan comment %d on %s %s as %s\n", c.Action, c.ID, t.Provider, t.Request(), c.Author.Login)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync comment: %v\n", err)
		return exitFail
	}
	return exitOK
}

// commentTarget fills what the flags leave out from the CI job's environment.
func (a *app) commentTarget(f commentFlags, status bool) (prcomment.Target, error) {
	provider := f.provider
	if provider == "" {
		switch {
		case a.getenv("GITHUB_ACTIONS") == "true":
			provider = prcomment.GitHub
		case a.getenv("GITLAB_CI") == "true":
			provider = prcomment.GitLab
		default:
			return prcomment.Target{}, fmt.Errorf("--provider is required outside GitHub Actions and GitLab CI")
		}
	}
	t := prcomment.Target{Provider: provider, APIURL: f.apiURL, Repo: f.slug, Number: f.number, Author: f.author, SHA: f.sha, TargetURL: f.jobURL}
	tok, err := a.secret("FLAGSYNC_COMMENT_TOKEN")
	if err != nil {
		return t, err
	}
	switch provider {
	case prcomment.GitHub:
		t.APIURL = cmpOr(t.APIURL, a.getenv("GITHUB_API_URL"), "https://api.github.com")
		t.Repo = cmpOr(t.Repo, a.getenv("GITHUB_REPOSITORY"))
		ev := githubEvent(a.getenv("GITHUB_EVENT_PATH"))
		if t.Number == 0 {
			t.Number = ev.number()
		}
		// GITHUB_SHA of a pull_request run is a merge commit the pull request never shows.
		t.SHA = cmpOr(t.SHA, ev.PullRequest.Head.SHA)
		if t.TargetURL == "" && a.getenv("GITHUB_SERVER_URL") != "" && t.Repo != "" && a.getenv("GITHUB_RUN_ID") != "" {
			t.TargetURL = a.getenv("GITHUB_SERVER_URL") + "/" + t.Repo + "/actions/runs/" + a.getenv("GITHUB_RUN_ID")
		}
		if tok == "" {
			tok = a.getenv("GITHUB_TOKEN")
			if a.getenv("GITHUB_ACTIONS") == "true" {
				// Actions' own token may not ask GET /user; what it posts is this bot's.
				t.InstallationAuthor = codehost.GitHubActionsBot.Login
			}
		}
	case prcomment.GitLab:
		t.APIURL = cmpOr(t.APIURL, a.getenv("CI_API_V4_URL"))
		t.Repo = cmpOr(t.Repo, a.getenv("CI_PROJECT_ID"))
		if t.Number == 0 {
			t.Number, _ = strconv.Atoi(a.getenv("CI_MERGE_REQUEST_IID"))
		}
		t.SHA = cmpOr(t.SHA, a.getenv("CI_COMMIT_SHA"))
		t.TargetURL = cmpOr(t.TargetURL, a.getenv("CI_JOB_URL"))
		t.PipelineID, _ = strconv.ParseInt(a.getenv("CI_PIPELINE_ID"), 10, 64)
		if tok == "" {
			tok = a.getenv("GITLAB_TOKEN")
		}
	default:
		return t, fmt.Errorf("--provider %q: want github or gitlab", provider)
	}
	t.Token = tok
	switch {
	case t.APIURL == "":
		return t, fmt.Errorf("no API URL: set --api-url")
	case t.Repo == "":
		return t, fmt.Errorf("no repository: set --repo-slug")
	case t.Number <= 0:
		return t, fmt.Errorf("no pull/merge request number: set --number (is this a pull request job?)")
	case t.Token == "":
		return t, fmt.Errorf("no token: set GITHUB_TOKEN, GITLAB_TOKEN or FLAGSYNC_COMMENT_TOKEN")
	case status && t.SHA == "":
		return t, fmt.Errorf("no commit to set the status on: set --sha")
	}
	return t, nil
}

// cmpOr returns the first of vals that is not empty.
func cmpOr(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// githubEventPayload is what comment reads of a GitHub Actions event payload.
type githubEventPayload struct {
	Number      int `json:"number"`
	PullRequest struct {
		Number int `json:"number"`
		Head   struct {
			SHA string `json:"sha"`
		} `json:"head"`
	} `json:"pull_request"`
}

func (e githubEventPayload) number() int {
	if e.PullRequest.Number != 0 {
		return e.PullRequest.Number
	}
	return e.Number
}

// githubEvent reads a GitHub Actions event payload; a missing or unreadable one is
// empty, and the flags must say what it would have.
func githubEvent(eventPath string) githubEventPayload {
	var ev githubEventPayload
	if eventPath == "" {
		return ev
	}
	if b, err := os.ReadFile(eventPath); err == nil {
		_ = json.Unmarshal(b, &ev)
	}
	return ev
}
