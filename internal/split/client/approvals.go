package splitclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/jsonpatch"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

// This file bridges Git review and Split's approvals. In an environment that requires
// approvals, Split answers 403 ("Approvals are required") to a definition write; the
// change must be filed as a change request, which a person (or another key) approves.
// Do files it, with the title, the comment, the approvers and the whole proposed
// definition, and returns an *apply.PendingApproval; while a request for the same flag
// and environment is open it is not filed again. Once the client knows an environment
// requires approvals, its reads list the open requests, so that the plan shows the
// change as awaiting approval instead of writing it again. An environment declared to
// require approvals (Config.ApprovalEnvironments) is known from the start: reads list
// its open requests, and a write there is filed without the 403 first.

// ChangeRequestsPath is the collection of change requests (GET, with status,
// environmentId, limit and after).
const ChangeRequestsPath = APIPrefix + "/changeRequests"

// maxRequestPage is the most change requests one list call returns (the documented
// maximum limit).
const maxRequestPage = 100

// FileChangeRequestPath is where a change request for an environment of a workspace is
// filed (POST), both given by id.
func FileChangeRequestPath(workspaceID, envID string) string {
	return ChangeRequestsPath + "/ws/" + esc(workspaceID) + "/environments/" + esc(envID)
}

// approvalsRequired reports whether err is Split's answer to a write in an environment
// that requires approvals: 403 with a message about approvals.
func approvalsRequired(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status == http.StatusForbidden && strings.Contains(strings.ToLower(ae.Message+" "+ae.Body), "approval")
}

// noteApprovals remembers that an environment requires approvals, so that reads list
// its open change requests.
func (c *Client) noteApprovals(workspace, env string) {
	c.mu.Lock()
	c.approvals[workspace+"/"+env] = true
	c.mu.Unlock()
}

// RequiresApprovals reports whether the environment was declared to require approvals
// (Config.ApprovalEnvironments) or the client has seen it require them (a 403
// "Approvals are required").
func (c *Client) RequiresApprovals(workspace, env string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.declared[env] || c.approvals[workspace+"/"+env]
}

// declaredApprovals reports whether the environment was declared to require approvals
// (Config.ApprovalEnvironments).
func (c *Client) declaredApprovals(env string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.declared[env]
}

// EnvironmentID returns the id of an environment given by name or id
// (GET /environments/ws/{ws}, read once per workspace).
func (c *Client) EnvironmentID(ctx context.Context, workspace, env string) (string, error) {
	c.mu.Lock()
	ids, ok := c.envIDs[workspace]
	c.mu.Unlock()
	if !ok {
		res, err := c.send(ctx, api.Call{Method: http.MethodGet, Path: APIPrefix + "/environments/ws/" + esc(workspace), Resend: true})
		if err != nil {
			return "", fmt.Errorf("list environments of workspace %s: %w", workspace, err)
		}
		var envs []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		if err := json.Unmarshal(res.Body, &envs); err != nil {
			return "", fmt.Errorf("list environments of workspace %s: decode: %w", workspace, err)
		}
		ids = map[string]string{}
		for _, e := range envs {
			ids[e.Name] = e.ID
		}
		c.mu.Lock()
		c.envIDs[workspace] = ids
		c.mu.Unlock()
	}
	if id := ids[env]; id != "" {
		return id, nil
	}
	for _, id := range ids {
		if id == env {
			return id, nil
		}
	}
	return "", fmt.Errorf("environment %q is not an environment of workspace %s", env, workspace)
}

// changeRequestView is a change request in the API's read shape.
type changeRequestView struct {
	ID            string        `json:"id"`
	Status        string        `json:"status"`
	Title         string        `json:"title"`
	OperationType string        `json:"operationType"`
	Split         *requestSplit `json:"split"`
	Environment   *readRef      `json:"environment"`
	Workspace     *readRef      `json:"workspace"`
}

// requestSplit is the flag part of a listed change request.
type requestSplit struct {
	Name        string   `json:"name"`
	Environment *readRef `json:"environment"`
}

// name is the flag's name, "" when the request is not a flag's.
func (r *requestSplit) name() string {
	if r == nil {
		return ""
	}
	return r.Name
}

// OpenChangeRequests returns the open (REQUESTED) change requests of the flags of one
// environment, by flag name: GET /changeRequests?status=REQUESTED&environmentId=…,
// every page (limit 100, after the previous page's nextMarker).
func (c *Client) OpenChangeRequests(ctx context.Context, workspace, env string) (map[string]splitmodel.ChangeRequest, error) {
	envID, err := c.EnvironmentID(ctx, workspace, env)
	if err != nil {
		return nil, err
	}
	wsID, err := c.workspaceID(ctx, workspace)
	if err != nil {
		return nil, err
	}
	out := map[string]splitmodel.ChangeRequest{}
	marker := ""
	for pages := 0; ; pages++ {
		q := url.Values{"status": {"REQUESTED"}, "environmentId": {envID}, "limit": {fmt.Sprint(maxRequestPage)}}
		if marker != "" {
			q.Set("after", marker)
		}
		res, err := c.send(ctx, api.Call{Method: http.MethodGet, Path: ChangeRequestsPath, Query: q, Resend: true})
		if err != nil {
			return nil, fmt.Errorf("list open change requests of %s in %s: %w", workspace, env, err)
		}
		var pg struct {
			Data       []changeRequestView `json:"data"`
			NextMarker *json.RawMessage    `json:"nextMarker"`
		}
		if err := json.Unmarshal(res.Body, &pg); err != nil {
			return nil, fmt.Errorf("list open change requests of %s in %s: decode: %w", workspace, env, err)
		}
		for _, cr := range pg.Data {
			if _, dup := out[cr.Split.name()]; !dup && cr.openIn(wsID, envID, env) {
				out[cr.Split.Name] = splitmodel.ChangeRequest{ID: cr.ID, Status: cr.Status, OperationType: cr.OperationType, Title: cr.Title}
			}
		}
		next := markerOf(pg.NextMarker)
		if next == "" || next == marker || len(pg.Data) == 0 || pages > 1000 {
			return out, nil
		}
		marker = next
	}
}

// openIn reports whether a listed change request is an open one of a flag in the given
// environment and workspace (in case the server did not filter them).
func (cr changeRequestView) openIn(wsID, envID, env string) bool {
	if cr.Split.name() == "" || (cr.Status != "" && cr.Status != "REQUESTED") {
		return false
	}
	e := cr.Environment
	if e == nil {
		e = cr.Split.Environment
	}
	if e != nil && e.ID != envID && e.Name != env {
		return false
	}
	return cr.Workspace == nil || cr.Workspace.ID == "" || cr.Workspace.ID == wsID
}

// markerOf reads a nextMarker, a string or a number; "" when there is none.
func markerOf(raw *json.RawMessage) string {
	if raw == nil {
		return ""
	}
	var v any
	if json.Unmarshal(*raw, &v) != nil || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// attachChangeRequests sets OpenChangeRequests on the flags of the environments the
// client knows require approvals, and keeps them for Do: a definition write whose flag
// has a change request open in that environment is not sent. A workspace without flags
// has no change request of a flag to list (and may not be listed by GET /workspaces yet).
func (c *Client) attachChangeRequests(ctx context.Context, workspace string, envs []string, flags []splitmodel.Flag) error {
	if len(flags) == 0 {
		return nil
	}
	for _, env := range envs {
		if !c.RequiresApprovals(workspace, env) {
			continue
		}
		open, err := c.OpenChangeRequests(ctx, workspace, env)
		if err != nil {
			return err
		}
		c.mu.Lock()
		for i := range flags {
			delete(c.open, workspace+"/"+flags[i].Name+"/"+env)
		}
		for name, cr := range open {
			c.open[workspace+"/"+name+"/"+env] = cr
		}
		c.mu.Unlock()
		for i := range flags {
			if cr, ok := open[flags[i].Name]; ok {
				if flags[i].OpenChangeRequests == nil {
					flags[i].OpenChangeRequests = map[string]splitmodel.ChangeRequest{}
				}
				flags[i].OpenChangeRequests[env] = cr
			}
		}
	}
	return nil
}

// pendingFor is the change request this client last saw open for a flag in an
// environment, if any.
func (c *Client) pendingFor(w definitionWrite) (splitmodel.ChangeRequest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cr, ok := c.open[w.workspace+"/"+w.flag+"/"+w.env]
	return cr, ok
}

// fileChangeRequest files a definition write as a change request, unless one is open
// for the flag in that environment, and returns the *apply.PendingApproval that says
// which; or the error that kept it from being filed. refused is Split's 403 "Approvals
// are required" to the write, or nil when the write was not sent because its
// environment is declared to require approvals.
func (c *Client) fileChangeRequest(ctx context.Context, w definitionWrite, req api.Request, info ChangeInfo, title, comment string, refused error) error {
	c.noteApprovals(w.workspace, w.env)
	fail := func(err error) error {
		if refused == nil {
			return &ChangeRequestError{Workspace: w.workspace, Flag: w.flag, Environment: w.env, Err: err}
		}
		return fmt.Errorf("%w; %s requires approvals and filing the change as a change request failed: %v", refused, w.env, err)
	}
	open, err := c.OpenChangeRequests(ctx, w.workspace, w.env)
	if err != nil {
		return fail(err)
	}
	if cr, ok := open[w.flag]; ok {
		c.remember(w, cr)
		return &apply.PendingApproval{Request: cr.ID, Detail: fmt.Sprintf("%s requires approvals; change request %s for %s is open", w.env, cr.OperationType, w.flag)}
	}
	op, split, err := c.proposal(ctx, w, req)
	if err != nil {
		return fail(err)
	}
	wsID, err := c.workspaceID(ctx, w.workspace)
	if err != nil {
		return fail(err)
	}
	envID, err := c.EnvironmentID(ctx, w.workspace, w.env)
	if err != nil {
		return fail(err)
	}
	if comment == "" {
		comment = info.Reason
	}
	body := map[string]any{"split": split, "operationType": op, "title": title, "comment": comment, "approvers": c.approvers()}
	if c.cfg.RolloutStatusID != "" {
		body["rolloutStatus"] = map[string]string{"id": c.cfg.RolloutStatusID}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return fail(err)
	}
	res, err := c.send(ctx, api.Call{Method: http.MethodPost, Path: FileChangeRequestPath(wsID, envID), Body: raw})
	if api.IsConflict(err) {
		// Filed meanwhile (another sync): it is open, so it waits.
		if again, lerr := c.OpenChangeRequests(ctx, w.workspace, w.env); lerr == nil {
			if cr, ok := again[w.flag]; ok {
				c.remember(w, cr)
				return &apply.PendingApproval{Request: cr.ID, Detail: w.env + " requires approvals; a change request was filed meanwhile"}
			}
		}
	}
	if err != nil {
		return fail(err)
	}
	var cr changeRequestView
	if err := json.Unmarshal(res.Body, &cr); err != nil || cr.ID == "" {
		return fail(fmt.Errorf("the change request's answer has no id: %s", api.OneLine(string(res.Body))))
	}
	c.remember(w, splitmodel.ChangeRequest{ID: cr.ID, Status: "REQUESTED", OperationType: op, Title: title})
	c.cfg.Logger.Info("change filed as a change request", "flag", w.workspace+"/"+w.flag, "env", w.env, "change_request", cr.ID, "operation", op)
	return &apply.PendingApproval{Request: cr.ID, Filed: true, Detail: fmt.Sprintf("%s requires approvals; %s filed for %s", w.env, op, w.flag)}
}

// ChangeRequestError is a definition write to an environment declared to require
// approvals (Config.ApprovalEnvironments) that could not be filed as a change request.
type ChangeRequestError struct {
	Workspace, Flag, Environment string
	Err                          error
}

// Error names the flag, the environment and what failed.
func (e *ChangeRequestError) Error() string {
	return fmt.Sprintf("file the change of %s/%s in %s as a change request (%s is declared to require approvals): %v", e.Workspace, e.Flag, e.Environment, e.Environment, e.Err)
}

// Unwrap returns what failed.
func (e *ChangeRequestError) Unwrap() error { return e.Err }

// remember keeps a change request open for a flag in an environment, for Do.
func (c *Client) remember(w definitionWrite, cr splitmodel.ChangeRequest) {
	c.mu.Lock()
	c.open[w.workspace+"/"+w.flag+"/"+w.env] = cr
	c.mu.Unlock()
}

func (c *Client) approvers() []string {
	if len(c.cfg.Approvers) == 0 {
		return []string{}
	}
	return c.cfg.Approvers
}

// proposal is the operation type and the "split" object of the change request that
// stands for a definition write: the whole definition for CREATE and UPDATE (a patch is
// applied to the definition as Split holds it now), the flag's name for KILL, RESTORE
// and ARCHIVE.
func (c *Client) proposal(ctx context.Context, w definitionWrite, req api.Request) (string, map[string]any, error) {
	named := map[string]any{"name": w.flag}
	var def []byte
	op := "UPDATE"
	switch w.op {
	case "kill":
		return "KILL", named, nil
	case "restore":
		return "RESTORE", named, nil
	case "delete":
		return "ARCHIVE", named, nil
	case "create":
		op, def = "CREATE", req.Body
	case "replace":
		def = req.Body
	case "update":
		live, err := c.GetDefinition(ctx, w.workspace, w.flag, w.env)
		if err != nil {
			return "", nil, err
		}
		patched, err := jsonpatch.Apply(live.Wire, req.Body)
		if err != nil {
			return "", nil, fmt.Errorf("the definition changed since the plan was made (%w); the next sync plans again", err)
		}
		_, d, err := DecodeDefinition(patched)
		if err != nil {
			return "", nil, err
		}
		def = EncodeDefinition(d)
	}
	split := map[string]any{}
	if err := json.Unmarshal(def, &split); err != nil {
		return "", nil, fmt.Errorf("the definition: %w", err)
	}
	split["name"] = w.flag
	return op, split, nil
}
