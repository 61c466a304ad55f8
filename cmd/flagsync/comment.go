package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/prcomment"
)

// cmdComment posts a Markdown plan as the one living comment of a pull or merge request.
func cmdComment(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("comment", `Usage: flagsync comment --file PLAN.md [--provider github|gitlab] [--repo-slug R] [--number N]

Posts the Markdown plan as a comment on a pull request (GitHub) or merge request
(GitLab), or updates the comment flagsync posted before (found by its hidden marker),
so a pull request carries exactly one plan that is kept current on every push.

In GitHub Actions and GitLab CI everything but --file is read from the job's
environment: GITHUB_API_URL, GITHUB_REPOSITORY, the pull request number from
GITHUB_EVENT_PATH, and GITHUB_TOKEN; or CI_API_V4_URL, CI_PROJECT_ID,
CI_MERGE_REQUEST_IID and GITLAB_TOKEN. FLAGSYNC_COMMENT_TOKEN (or _FILE) overrides the token.

Examples:
  flagsync plan --format markdown --out plan.md
  flagsync comment --file plan.md`)
	file := fs.String("file", "", "the Markdown plan to post (from `flagsync plan --format markdown`)")
	provider := fs.String("provider", "", "github or gitlab (default: detected from the CI environment)")
	slug := fs.String("repo-slug", "", "owner/name on GitHub, project id or path on GitLab (default: from the CI environment)")
	number := fs.Int("number", 0, "pull request number or merge request iid (default: from the CI environment)")
	apiURL := fs.String("api-url", "", "the Git host's API base URL (default: from the CI environment)")
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	if *file == "" {
		fmt.Fprintln(a.stderr, "flagsync comment: --file is required")
		return exitUsage
	}
	body, err := os.ReadFile(*file)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync comment: %v\n", err)
		return exitFail
	}
	t, err := a.commentTarget(*provider, *slug, *number, *apiURL)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync comment: %v\n", err)
		return exitUsage
	}
	res, err := prcomment.Upsert(ctx, nil, t, plan.MarkdownMarker, string(body))
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync comment: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(a.stdout, "%s plan comment %d on %s %s#%d\n", res.Action, res.ID, t.Provider, t.Repo, t.Number)
	return exitOK
}

// commentTarget fills what the flags leave out from the CI job's environment.
func (a *app) commentTarget(provider, slug string, number int, apiURL string) (prcomment.Target, error) {
	if provider == "" {
		switch {
		case a.getenv("GITHUB_ACTIONS") == "true":
			provider = "github"
		case a.getenv("GITLAB_CI") == "true":
			provider = "gitlab"
		default:
			return prcomment.Target{}, fmt.Errorf("--provider is required outside GitHub Actions and GitLab CI")
		}
	}
	t := prcomment.Target{Provider: provider, APIURL: apiURL, Repo: slug, Number: number}
	tok, err := a.secret("FLAGSYNC_COMMENT_TOKEN")
	if err != nil {
		return t, err
	}
	switch provider {
	case "github":
		if t.APIURL == "" {
			t.APIURL = a.envDefault("GITHUB_API_URL", "https://api.github.com")
		}
		if t.Repo == "" {
			t.Repo = a.getenv("GITHUB_REPOSITORY")
		}
		if t.Number == 0 {
			t.Number = githubPRNumber(a.getenv("GITHUB_EVENT_PATH"))
		}
		if tok == "" {
			tok = a.getenv("GITHUB_TOKEN")
		}
	case "gitlab":
		if t.APIURL == "" {
			t.APIURL = a.getenv("CI_API_V4_URL")
		}
		if t.Repo == "" {
			t.Repo = a.getenv("CI_PROJECT_ID")
		}
		if t.Number == 0 {
			t.Number, _ = strconv.Atoi(a.getenv("CI_MERGE_REQUEST_IID"))
		}
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
	}
	return t, nil
}

// githubPRNumber reads the pull request number from a GitHub Actions event payload.
func githubPRNumber(eventPath string) int {
	if eventPath == "" {
		return 0
	}
	b, err := os.ReadFile(eventPath)
	if err != nil {
		return 0
	}
	var ev struct {
		Number      int `json:"number"`
		PullRequest struct {
			Number int `json:"number"`
		} `json:"pull_request"`
	}
	if json.Unmarshal(b, &ev) != nil {
		return 0
	}
	if ev.PullRequest.Number != 0 {
		return ev.PullRequest.Number
	}
	return ev.Number
}
