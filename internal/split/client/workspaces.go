package splitclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/api"
)

// Workspace is one workspace (project) of the account, as GET /workspaces lists it.
type Workspace struct {
	ID   string
	Name string
	// RequiresTitleAndComments is the workspace setting that makes Split refuse a change
	// without a title and a comment.
	RequiresTitleAndComments bool
}

// workspaceIndex is the account's workspaces, read once per client.
type workspaceIndex struct {
	all []Workspace
}

// find returns the workspace whose id is ws, else the one named ws (exactly, then
// ignoring case when only one matches).
func (x *workspaceIndex) find(ws string) (Workspace, bool) {
	for _, w := range x.all {
		if w.ID == ws {
			return w, true
		}
	}
	for _, w := range x.all {
		if w.Name == ws {
			return w, true
		}
	}
	var match []Workspace
	for _, w := range x.all {
		if strings.EqualFold(w.Name, ws) {
			match = append(match, w)
		}
	}
	if len(match) == 1 {
		return match[0], true
	}
	return Workspace{}, false
}

// WorkspacesPath lists the account's workspaces.
const WorkspacesPath = APIPrefix + "/workspaces"

// Workspaces returns the account's workspaces (GET /workspaces, every page), read once
// per client.
func (c *Client) Workspaces(ctx context.Context) ([]Workspace, error) {
	c.mu.Lock()
	if c.workspaces != nil {
		defer c.mu.Unlock()
		return slices.Clone(c.workspaces.all), nil
	}
	c.mu.Unlock()
	raws, err := c.list(ctx, "workspaces", WorkspacesPath, nil)
	if err != nil {
		return nil, err
	}
	idx := &workspaceIndex{}
	for _, raw := range raws {
		var w struct {
			ID                       string `json:"id"`
			Name                     string `json:"name"`
			RequiresTitleAndComments bool   `json:"requiresTitleAndComments"`
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, fmt.Errorf("list workspaces: decode: %w", err)
		}
		idx.all = append(idx.all, Workspace{ID: w.ID, Name: w.Name, RequiresTitleAndComments: w.RequiresTitleAndComments})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.workspaces = idx
	return slices.Clone(idx.all), nil
}

// UnknownWorkspaceError is returned when a workspace is neither the id nor the name of
// one of the account's workspaces.
type UnknownWorkspaceError struct {
	Workspace string
	Known     []string // "name (id)", sorted
}

// Error names the workspace and lists the account's.
func (e *UnknownWorkspaceError) Error() string {
	return fmt.Sprintf("workspace %q is neither the name nor the id of a workspace of this account (workspaces: %s)", e.Workspace, strings.Join(e.Known, ", "))
}

// LookupWorkspace returns the workspace whose id or name is ws, from GET /workspaces
// (read once per client).
func (c *Client) LookupWorkspace(ctx context.Context, ws string) (Workspace, error) {
	if _, err := c.Workspaces(ctx); err != nil {
		return Workspace{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked[ws] = true
	if w, ok := c.workspaces.find(ws); ok {
		if w.ID != ws {
			c.named[ws] = w.ID
		}
		return w, nil
	}
	e := &UnknownWorkspaceError{Workspace: ws}
	for _, w := range c.workspaces.all {
		e.Known = append(e.Known, fmt.Sprintf("%s (%s)", w.Name, w.ID))
	}
	slices.Sort(e.Known)
	return Workspace{}, e
}

// uuidPattern is the form of Split's workspace ids: a value of that form is an id and
// never looked up.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// workspacePaths are the path prefixes (below APIPrefix) followed by a workspace.
var workspacePaths = []string{"/splits/ws/", "/environments/ws/", "/trafficTypes/ws/", "/changeRequests/ws/"}

// workspaceIn splits a request path around the workspace it names: the path before it,
// the workspace (unescaped) and the rest; ok is false for a path without one.
func workspaceIn(path string) (before, ws, rest string, ok bool) {
	p, query, _ := strings.Cut(path, "?")
	for _, w := range workspacePaths {
		prefix := APIPrefix + w
		tail, found := strings.CutPrefix(p, prefix)
		if !found {
			continue
		}
		seg, after, _ := strings.Cut(tail, "/")
		v, err := url.PathUnescape(seg)
		if err != nil || v == "" {
			return "", "", "", false
		}
		rest = ""
		if after != "" || strings.HasSuffix(tail, "/") {
			rest = "/" + after
		}
		if query != "" {
			rest += "?" + query
		}
		return prefix, v, rest, true
	}
	return "", "", "", false
}

// withWorkspace is path with its workspace replaced by the id a name was resolved to,
// once it was.
func (c *Client) withWorkspace(path string) string {
	before, ws, rest, ok := workspaceIn(path)
	if !ok {
		return path
	}
	c.mu.Lock()
	id := c.named[ws]
	c.mu.Unlock()
	if id == "" {
		return path
	}
	return before + esc(id) + rest
}

// send sends a call, with a workspace given by name replaced by its id. A workspace is
// taken as given until the API refuses a call that names it (400, 403 or 404): it is
// then looked up once (GET /workspaces), and when it is a name, the call is sent again
// with its id. A workspace that is neither a name nor an id is an *UnknownWorkspaceError.
func (c *Client) send(ctx context.Context, call api.Call) (*api.Response, error) {
	call.Path = c.withWorkspace(call.Path)
	res, err := c.caller.Send(ctx, call)
	var ae *api.Error
	if err == nil || !errors.As(err, &ae) || (ae.Status != http.StatusBadRequest && ae.Status != http.StatusForbidden && ae.Status != http.StatusNotFound) {
		return res, err
	}
	_, ws, _, ok := workspaceIn(call.Path)
	if !ok || uuidPattern.MatchString(ws) {
		return res, err
	}
	c.mu.Lock()
	done := c.checked[ws]
	c.mu.Unlock()
	if done {
		return res, err
	}
	w, lerr := c.LookupWorkspace(ctx, ws)
	var unknown *UnknownWorkspaceError
	switch {
	case errors.As(lerr, &unknown) && ae.Status == http.StatusNotFound:
		// Most likely the cause; both errors are kept (api.IsNotFound still holds).
		return nil, fmt.Errorf("%w (%s answered %w)", lerr, call.Method+" "+strings.SplitN(call.Path, "?", 2)[0], err)
	case lerr != nil || w.ID == ws:
		return res, err
	}
	call.Path = c.withWorkspace(call.Path)
	return c.caller.Send(ctx, call)
}

// workspaceID returns the id of a workspace given by name or id: the id it was resolved
// to, or ws itself when it is an id (a UUID, or a value the API took as one). It looks
// the workspace up when it must name it in a path that does not carry it otherwise.
func (c *Client) workspaceID(ctx context.Context, ws string) (string, error) {
	c.mu.Lock()
	id, done := c.named[ws], c.checked[ws]
	c.mu.Unlock()
	switch {
	case id != "":
		return id, nil
	case done || uuidPattern.MatchString(ws):
		return ws, nil
	}
	w, err := c.LookupWorkspace(ctx, ws)
	if err != nil {
		return "", err
	}
	return w.ID, nil
}
