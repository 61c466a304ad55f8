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

// Comment actions.
const (
	Created   = "created"
	Updated   = "updated"
	Unchanged = "unchanged" // the comment already had this body: nothing was written
)

// CommentResult says what Upsert did.
type CommentResult struct {
	Action string // Created, Updated or Unchanged
	ID     int64
	// Author is the account the comment is written by, as flagsync identified it.
	Author codehost.Identity
	// Foreign are the comments that carry the marker but were written by someone else:
	// they were left as they are.
	Foreign []int64
}

// IdentityError says that the token's account could not be found, so flagsync cannot
// tell its own comment from anyone else's and writes nothing.
type IdentityError struct {
	Provider string
	Err      error
}

// Error explains what to do about it.
func (e *IdentityError) Error() string {
	if e.Provider == GitHub && codehost.IsStatus(e.Err, http.StatusForbidden) {
		return fmt.Sprintf("the token cannot tell whose it is (%v): it is an installation token; "+
			"give the login its comments are written by with --author (APP-SLUG[bot]; github-actions[bot] for Actions' GITHUB_TOKEN)", e.Err)
	}
	return fmt.Sprintf("find who the token belongs to: %v", e.Err)
}

// Unwrap returns the host's error.
func (e *IdentityError) Unwrap() error { return e.Err }

// Upsert keeps one plan comment on the request: it updates the comment written by the
// token's own account that carries marker, or creates one when there is none. A comment
// with the marker written by anyone else is never touched, whatever the token could do
// to it (a repository admin's or a GitLab Maintainer's token could edit it). body gets
// the marker as its first line when it does not contain it. The comments are read page
// by page, oldest first; the oldest own comment wins.
func Upsert(ctx context.Context, hc *http.Client, t Target, marker, body string, logger *slog.Logger) (CommentResult, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !strings.Contains(body, marker) {
		body = marker + "\n" + body
	}
	h, err := t.host(hc)
	if err != nil {
		return CommentResult{}, err
	}
	me, err := identify(ctx, h, t, logger)
	if err != nil {
		return CommentResult{}, err
	}
	res := CommentResult{Author: me}
	var own *codehost.Comment
	visit := func(c codehost.Comment) bool {
		if c.System || !strings.Contains(c.Body, marker) {
			return true
		}
		if !me.Is(c.Author) {
			res.Foreign = append(res.Foreign, c.ID)
			logger.Info("leaving a comment with the plan marker alone: another account wrote it",
				"comment", c.ID, "author", c.Author.Login, "token_account", me.Login)
			return true
		}
		own = &c
		return false
	}
	if h.gh != nil {
		err = h.gh.IssueComments(ctx, t.Repo, t.Number, visit)
	} else {
		err = h.gl.MergeRequestNotes(ctx, t.Repo, t.Number, visit)
	}
	if err != nil {
		return res, err
	}
	var c codehost.Comment
	switch {
	case own != nil && own.Body == body:
		res.Action, res.ID = Unchanged, own.ID
		return res, nil
	case own != nil && h.gh != nil:
		res.Action = Updated
		c, err = h.gh.UpdateIssueComment(ctx, t.Repo, own.ID, body)
	case own != nil:
		res.Action = Updated
		c, err = h.gl.UpdateMergeRequestNote(ctx, t.Repo, t.Number, own.ID, body)
	case h.gh != nil:
		res.Action = Created
		c, err = h.gh.CreateIssueComment(ctx, t.Repo, t.Number, body)
	default:
		res.Action = Created
		c, err = h.gl.CreateMergeRequestNote(ctx, t.Repo, t.Number, body)
	}
	if err != nil {
		return res, err
	}
	res.ID = c.ID
	if own != nil {
		res.ID = own.ID
	}
	logger.Info("plan comment "+res.Action, "comment", res.ID, "request", t.Request(), "author", me.Login)
	return res, nil
}

// identify returns the account whose comment is flagsync's: Target.Author when given;
// else the token's own account (GET /user); else, for an installation token that GitHub
// refuses GET /user, Target.InstallationAuthor.
func identify(ctx context.Context, h host, t Target, logger *slog.Logger) (codehost.Identity, error) {
	if t.Author != "" {
		return codehost.Identity{Login: t.Author}, nil
	}
	var me codehost.Identity
	var err error
	if h.gh != nil {
		me, err = h.gh.User(ctx)
	} else {
		me, err = h.gl.User(ctx)
	}
	if err == nil {
		return me, nil
	}
	if h.gh != nil && codehost.IsStatus(err, http.StatusForbidden) && t.InstallationAuthor != "" {
		logger.Info("the token is an installation token (GET /user refused): its comments are written by its app's bot",
			"author", t.InstallationAuthor)
		if strings.EqualFold(t.InstallationAuthor, codehost.GitHubActionsBot.Login) {
			return codehost.GitHubActionsBot, nil
		}
		return codehost.Identity{Login: t.InstallationAuthor, Bot: true}, nil
	}
	var he *codehost.Error
	if errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden || he.Status == http.StatusNotFound) {
		return codehost.Identity{}, &IdentityError{Provider: t.Provider, Err: err}
	}
	return codehost.Identity{}, err
}
