package prcomment

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Target is where the comment lives and how to reach it.
type Target struct {
	// Provider is "github" or "gitlab".
	Provider string
	// APIURL is the API base: https://api.github.com, or GitLab's .../api/v4.
	APIURL string
	// Repo is "owner/name" on GitHub, the numeric id or URL-encoded path on GitLab.
	Repo string
	// Number is the pull request number (GitHub) or merge request iid (GitLab).
	Number int
	// Token authenticates the calls; it is never printed.
	Token string
}

// Result says what Upsert did.
type Result struct {
	Action string // "created" or "updated"
	ID     int64
}

// Error is a non-2xx answer from the Git host.
type Error struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// Upsert finds the comment whose body contains marker and replaces its body, or creates
// one when none exists, so a pull request carries exactly one plan comment.
func Upsert(ctx context.Context, hc *http.Client, t Target, marker, body string) (Result, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	c := &client{hc: hc, t: t}
	switch t.Provider {
	case "github":
		return c.github(ctx, marker, body)
	case "gitlab":
		return c.gitlab(ctx, marker, body)
	}
	return Result{}, fmt.Errorf("comment provider %q: want github or gitlab", t.Provider)
}

type comment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

type client struct {
	hc *http.Client
	t  Target
}

const perPage = 100

// maxPages bounds the search for the marker (10,000 comments).
const maxPages = 100

func (c *client) github(ctx context.Context, marker, body string) (Result, error) {
	base := "/repos/" + c.t.Repo
	for page := 1; page <= maxPages; page++ {
		var cs []comment
		path := fmt.Sprintf("%s/issues/%d/comments?per_page=%d&page=%d", base, c.t.Number, perPage, page)
		if err := c.do(ctx, http.MethodGet, path, nil, &cs); err != nil {
			return Result{}, err
		}
		for _, cm := range cs {
			if strings.Contains(cm.Body, marker) {
				var out comment
				err := c.do(ctx, http.MethodPatch, fmt.Sprintf("%s/issues/comments/%d", base, cm.ID), map[string]string{"body": body}, &out)
				return Result{Action: "updated", ID: cm.ID}, err
			}
		}
		if len(cs) < perPage {
			break
		}
	}
	var out comment
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("%s/issues/%d/comments", base, c.t.Number), map[string]string{"body": body}, &out)
	return Result{Action: "created", ID: out.ID}, err
}

func (c *client) gitlab(ctx context.Context, marker, body string) (Result, error) {
	base := fmt.Sprintf("/projects/%s/merge_requests/%d/notes", url.PathEscape(c.t.Repo), c.t.Number)
	for page := 1; page <= maxPages; page++ {
		var cs []comment
		if err := c.do(ctx, http.MethodGet, fmt.Sprintf("%s?per_page=%d&page=%d", base, perPage, page), nil, &cs); err != nil {
			return Result{}, err
		}
		for _, cm := range cs {
			if strings.Contains(cm.Body, marker) {
				var out comment
				err := c.do(ctx, http.MethodPut, fmt.Sprintf("%s/%d", base, cm.ID), map[string]string{"body": body}, &out)
				return Result{Action: "updated", ID: cm.ID}, err
			}
		}
		if len(cs) < perPage {
			break
		}
	}
	var out comment
	err := c.do(ctx, http.MethodPost, base, map[string]string{"body": body}, &out)
	return Result{Action: "created", ID: out.ID}, err
}

func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.t.APIURL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.t.Provider == "github" {
		req.Header.Set("Authorization", "Bearer "+c.t.Token)
		req.Header.Set("Accept", "application/vnd.github+json")
		req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	} else {
		req.Header.Set("PRIVATE-TOKEN", c.t.Token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// The URL carries no credentials; the token is only in a header.
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &e)
		msg := e.Message
		if msg == "" {
			msg = strings.TrimSpace(string(data))
			if len(msg) > 200 {
				msg = msg[:200]
			}
		}
		msg = strings.ReplaceAll(msg, c.t.Token, "[redacted]")
		return &Error{Method: method, Path: path, Status: resp.StatusCode, Message: msg}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}
