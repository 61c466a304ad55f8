package codehost

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// GitLab is a client of GitLab's REST API (v4).
type GitLab struct {
	rest
}

// NewGitLab returns a client of the GitLab API at apiURL (https://HOST/api/v4, GitLab
// CI's CI_API_V4_URL) that authenticates with token (a personal, project or group access
// token). A nil hc gets a client with DefaultTimeout.
func NewGitLab(hc *http.Client, apiURL, token string) (*GitLab, error) {
	r, err := newREST(hc, apiURL, token)
	if err != nil {
		return nil, fmt.Errorf("gitlab: %w", err)
	}
	r.accept = "application/json"
	r.auth = func(req *http.Request) { req.Header.Set("PRIVATE-TOKEN", token) }
	return &GitLab{rest: r}, nil
}

type gitlabUser struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Bot      bool   `json:"bot"`
}

func (u gitlabUser) identity() Identity { return Identity{ID: u.ID, Login: u.Username, Bot: u.Bot} }

// User returns the account the token belongs to (GET /user): the person of a personal
// access token, the bot user of a project or group access token.
func (g *GitLab) User(ctx context.Context) (Identity, error) {
	var u gitlabUser
	if _, err := g.do(ctx, http.MethodGet, g.url("/user"), nil, &u); err != nil {
		return Identity{}, fmt.Errorf("gitlab: who is the token: %w", err)
	}
	return u.identity(), nil
}

func projectPath(project string) (string, error) {
	if project == "" {
		return "", fmt.Errorf("gitlab: no project")
	}
	// A numeric id or a full path, whose slashes must be encoded.
	return "/projects/" + url.PathEscape(project), nil
}

type gitlabNote struct {
	ID     int64      `json:"id"`
	Body   string     `json:"body"`
	Author gitlabUser `json:"author"`
	System bool       `json:"system"`
}

func (n gitlabNote) comment() Comment {
	return Comment{ID: n.ID, Body: n.Body, Author: n.Author.identity(), System: n.System}
}

// MergeRequestNotes calls visit with each note of merge request iid of project, oldest
// first, following the X-Next-Page header (or a Link header's next page), until visit
// returns false.
func (g *GitLab) MergeRequestNotes(ctx context.Context, project string, iid int, visit func(Comment) bool) error {
	base, err := projectPath(project)
	if err != nil {
		return err
	}
	list := g.url(fmt.Sprintf("%s/merge_requests/%d/notes?per_page=%d&sort=asc&order_by=created_at", base, iid, PerPage))
	next := list
	for page := 0; next != ""; page++ {
		if page == MaxPages {
			return fmt.Errorf("gitlab: list the notes of %s!%d: %w", project, iid, ErrTooManyPages)
		}
		var ns []gitlabNote
		resp, err := g.do(ctx, http.MethodGet, next, nil, &ns)
		if err != nil {
			return fmt.Errorf("gitlab: list the notes of %s!%d: %w", project, iid, err)
		}
		for _, n := range ns {
			if !visit(n.comment()) {
				return nil
			}
		}
		next = ""
		if np, ok := resp.header[http.CanonicalHeaderKey("X-Next-Page")]; ok {
			if len(np) > 0 && np[0] != "" {
				n, err := strconv.Atoi(np[0])
				if err != nil || n < 1 {
					return fmt.Errorf("gitlab: list the notes of %s!%d: X-Next-Page %q is not a page number", project, iid, np[0])
				}
				next = list + "&page=" + strconv.Itoa(n)
			}
		} else {
			// Keyset-paginated answers carry only a Link header.
			next = nextLink(resp.header)
		}
	}
	return nil
}

// CreateMergeRequestNote posts a new note on merge request iid of project.
func (g *GitLab) CreateMergeRequestNote(ctx context.Context, project string, iid int, body string) (Comment, error) {
	base, err := projectPath(project)
	if err != nil {
		return Comment{}, err
	}
	var n gitlabNote
	if _, err := g.do(ctx, http.MethodPost, g.url(fmt.Sprintf("%s/merge_requests/%d/notes", base, iid)), map[string]string{"body": body}, &n); err != nil {
		return Comment{}, fmt.Errorf("gitlab: comment on %s!%d: %w", project, iid, err)
	}
	return n.comment(), nil
}

// UpdateMergeRequestNote replaces the body of note id of merge request iid. GitLab lets
// the note's author do so, and also anyone with the Maintainer role, so flagsync must
// check the author itself before asking.
func (g *GitLab) UpdateMergeRequestNote(ctx context.Context, project string, iid int, id int64, body string) (Comment, error) {
	base, err := projectPath(project)
	if err != nil {
		return Comment{}, err
	}
	var n gitlabNote
	if _, err := g.do(ctx, http.MethodPut, g.url(fmt.Sprintf("%s/merge_requests/%d/notes/%d", base, iid, id)), map[string]string{"body": body}, &n); err != nil {
		return Comment{}, fmt.Errorf("gitlab: update note %d of %s!%d: %w", id, project, iid, err)
	}
	return n.comment(), nil
}

// MaxGitLabStatusDescription is the most characters GitLab keeps of a commit status's
// description.
const MaxGitLabStatusDescription = 255

// Commit status states on GitLab.
const (
	GitLabStatusSuccess = "success"
	GitLabStatusFailed  = "failed"
)

// GitLabStatus is a commit status on GitLab: an external job named Name in the commit's
// pipeline.
type GitLabStatus struct {
	State       string `json:"state"`
	Name        string `json:"name"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url,omitempty"`
	// PipelineID puts the status in that pipeline (CI_PIPELINE_ID) when a commit has
	// several, as a merge request's and its branch's; 0 lets GitLab choose.
	PipelineID int64 `json:"pipeline_id,omitempty"`
}

// SetCommitStatus sets a commit status on sha of project (POST /projects/:id/statuses/:sha).
// It needs a token with the api scope and at least the Developer role. The description
// is shortened to MaxGitLabStatusDescription characters.
func (g *GitLab) SetCommitStatus(ctx context.Context, project, sha string, st GitLabStatus) error {
	base, err := projectPath(project)
	if err != nil {
		return err
	}
	st.Description = Truncate(st.Description, MaxGitLabStatusDescription)
	if _, err := g.do(ctx, http.MethodPost, g.url(base+"/statuses/"+url.PathEscape(sha)), st, nil); err != nil {
		return fmt.Errorf("gitlab: set status %q on %s@%s: %w", st.Name, project, sha, err)
	}
	return nil
}
