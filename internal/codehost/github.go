package codehost

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// GitHub is a client of GitHub's REST API (github.com or GitHub Enterprise Server).
type GitHub struct {
	rest
}

// NewGitHub returns a client of the GitHub API at apiURL (https://api.github.com, or a
// server's https://HOST/api/v3) that authenticates with token. A nil hc gets a client
// with DefaultTimeout.
func NewGitHub(hc *http.Client, apiURL, token string) (*GitHub, error) {
	r, err := newREST(hc, apiURL, token)
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	r.accept = "application/vnd.github+json"
	r.auth = func(req *http.Request) {
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	}
	return &GitHub{rest: r}, nil
}

// GitHubActionsBot is the account that writes what GitHub Actions' own GITHUB_TOKEN
// posts. Its id differs between github.com and GitHub Enterprise Server, so it is
// known by login only.
var GitHubActionsBot = Identity{Login: "github-actions[bot]", Bot: true}

type githubUser struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Type  string `json:"type"` // User, Bot, Organization
}

func (u githubUser) identity() Identity {
	return Identity{ID: u.ID, Login: u.Login, Bot: u.Type == "Bot"}
}

// User returns the account the token belongs to (GET /user). Personal access tokens,
// OAuth tokens and GitHub App user-to-server tokens have one; an installation token
// (Actions' GITHUB_TOKEN, an app's installation token) is refused with a 403 *Error
// ("Resource not accessible by integration").
func (g *GitHub) User(ctx context.Context) (Identity, error) {
	var u githubUser
	if _, err := g.do(ctx, http.MethodGet, g.url("/user"), nil, &u); err != nil {
		return Identity{}, fmt.Errorf("github: who is the token: %w", err)
	}
	return u.identity(), nil
}

// repoPath returns /repos/OWNER/NAME for "OWNER/NAME".
func repoPath(repo string) (string, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("github: repository %q: want OWNER/NAME", repo)
	}
	return "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name), nil
}

type githubComment struct {
	ID   int64      `json:"id"`
	Body string     `json:"body"`
	User githubUser `json:"user"`
}

func (c githubComment) comment() Comment {
	return Comment{ID: c.ID, Body: c.Body, Author: c.User.identity()}
}

// IssueComments calls visit with each comment of pull request (or issue) number of repo,
// oldest first, following the Link header's next page, until visit returns false.
func (g *GitHub) IssueComments(ctx context.Context, repo string, number int, visit func(Comment) bool) error {
	base, err := repoPath(repo)
	if err != nil {
		return err
	}
	next := g.url(fmt.Sprintf("%s/issues/%d/comments?per_page=%d", base, number, PerPage))
	for page := 0; next != ""; page++ {
		if page == MaxPages {
			return fmt.Errorf("github: list the comments of %s#%d: %w", repo, number, ErrTooManyPages)
		}
		var cs []githubComment
		resp, err := g.do(ctx, http.MethodGet, next, nil, &cs)
		if err != nil {
			return fmt.Errorf("github: list the comments of %s#%d: %w", repo, number, err)
		}
		for _, c := range cs {
			if !visit(c.comment()) {
				return nil
			}
		}
		next = nextLink(resp.header)
	}
	return nil
}

// CreateIssueComment posts a new comment on pull request (or issue) number of repo.
func (g *GitHub) CreateIssueComment(ctx context.Context, repo string, number int, body string) (Comment, error) {
	base, err := repoPath(repo)
	if err != nil {
		return Comment{}, err
	}
	var c githubComment
	if _, err := g.do(ctx, http.MethodPost, g.url(fmt.Sprintf("%s/issues/%d/comments", base, number)), map[string]string{"body": body}, &c); err != nil {
		return Comment{}, fmt.Errorf("github: comment on %s#%d: %w", repo, number, err)
	}
	return c.comment(), nil
}

// UpdateIssueComment replaces the body of comment id of repo. GitHub refuses (403) to
// let a token edit another account's comment unless it has admin rights; flagsync never
// asks it to.
func (g *GitHub) UpdateIssueComment(ctx context.Context, repo string, id int64, body string) (Comment, error) {
	base, err := repoPath(repo)
	if err != nil {
		return Comment{}, err
	}
	var c githubComment
	if _, err := g.do(ctx, http.MethodPatch, g.url(fmt.Sprintf("%s/issues/comments/%d", base, id)), map[string]string{"body": body}, &c); err != nil {
		return Comment{}, fmt.Errorf("github: update comment %d of %s: %w", id, repo, err)
	}
	return c.comment(), nil
}

// Check run conclusions flagsync sets.
const (
	ConclusionSuccess = "success"
	ConclusionNeutral = "neutral"
	ConclusionFailure = "failure"
)

// Annotation levels of a check run.
const (
	AnnotationNotice  = "notice"
	AnnotationWarning = "warning"
	AnnotationFailure = "failure"
)

// MaxAnnotationsPerRequest is how many annotations GitHub takes in one check run request;
// CreateCheckRun sends the rest in further updates.
const MaxAnnotationsPerRequest = 50

// MaxCheckRunSummary is the most characters GitHub accepts in a check run's summary.
const MaxCheckRunSummary = 65535

// CheckRun is a completed check run on a commit.
type CheckRun struct {
	Name       string
	HeadSHA    string
	Conclusion string // ConclusionSuccess, ConclusionNeutral or ConclusionFailure
	DetailsURL string // optional
	Output     CheckRunOutput
}

// CheckRunOutput is what a check run shows: a title, a Markdown summary, and annotations
// on lines of the commit's files.
type CheckRunOutput struct {
	Title       string       `json:"title"`
	Summary     string       `json:"summary"`
	Annotations []Annotation `json:"annotations,omitempty"`
}

// Annotation marks a line of a file in a check run.
type Annotation struct {
	Path            string `json:"path"` // relative to the repository root
	StartLine       int    `json:"start_line"`
	EndLine         int    `json:"end_line"`
	StartColumn     int    `json:"start_column,omitempty"` // only when the annotation is on one line
	EndColumn       int    `json:"end_column,omitempty"`
	AnnotationLevel string `json:"annotation_level"` // AnnotationNotice, AnnotationWarning or AnnotationFailure
	Title           string `json:"title,omitempty"`
	Message         string `json:"message"`
}

// CreateCheckRun creates a completed check run and returns its id and the number of
// requests it took: GitHub takes MaxAnnotationsPerRequest annotations per request, so
// the rest are added by updating the run, a batch at a time. Check runs need an
// installation token with checks: write (Actions' GITHUB_TOKEN, or a GitHub App's);
// GitHub refuses other tokens with a 403 *Error.
func (g *GitHub) CreateCheckRun(ctx context.Context, repo string, run CheckRun) (id int64, requests int, err error) {
	base, err := repoPath(repo)
	if err != nil {
		return 0, 0, err
	}
	anns := run.Output.Annotations
	first := anns[:min(len(anns), MaxAnnotationsPerRequest)]
	out := run.Output
	out.Summary = Truncate(out.Summary, MaxCheckRunSummary)
	out.Annotations = first
	in := struct {
		Name       string         `json:"name"`
		HeadSHA    string         `json:"head_sha"`
		Status     string         `json:"status"`
		Conclusion string         `json:"conclusion"`
		DetailsURL string         `json:"details_url,omitempty"`
		Output     CheckRunOutput `json:"output"`
	}{run.Name, run.HeadSHA, "completed", run.Conclusion, run.DetailsURL, out}
	var created struct {
		ID int64 `json:"id"`
	}
	if _, err := g.do(ctx, http.MethodPost, g.url(base+"/check-runs"), in, &created); err != nil {
		return 0, 0, fmt.Errorf("github: create check run %q on %s@%s: %w", run.Name, repo, run.HeadSHA, err)
	}
	requests = 1
	for rest := anns[len(first):]; len(rest) > 0; {
		n := min(len(rest), MaxAnnotationsPerRequest)
		out.Annotations = rest[:n]
		body := struct {
			Output CheckRunOutput `json:"output"`
		}{out}
		if _, err := g.do(ctx, http.MethodPatch, g.url(fmt.Sprintf("%s/check-runs/%d", base, created.ID)), body, nil); err != nil {
			return created.ID, requests, fmt.Errorf("github: add annotations to check run %d of %s: %w", created.ID, repo, err)
		}
		requests++
		rest = rest[n:]
	}
	return created.ID, requests, nil
}

// MaxStatusDescription is the most characters GitHub accepts in a commit status's
// description.
const MaxStatusDescription = 140

// Commit status states on GitHub.
const (
	StatusSuccess = "success"
	StatusFailure = "failure"
)

// Status is a commit status: a state, a short description and a link, under a context
// name that later statuses of the same context replace.
type Status struct {
	State       string `json:"state"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description"`
	Context     string `json:"context"`
}

// CreateStatus sets a commit status on sha (POST /repos/{repo}/statuses/{sha}). It
// needs statuses: write (or a classic token's repo:status scope). The description is
// shortened to MaxStatusDescription characters.
func (g *GitHub) CreateStatus(ctx context.Context, repo, sha string, st Status) error {
	base, err := repoPath(repo)
	if err != nil {
		return err
	}
	st.Description = Truncate(st.Description, MaxStatusDescription)
	if _, err := g.do(ctx, http.MethodPost, g.url(base+"/statuses/"+url.PathEscape(sha)), st, nil); err != nil {
		return fmt.Errorf("github: set status %q on %s@%s: %w", st.Context, repo, sha, err)
	}
	return nil
}
