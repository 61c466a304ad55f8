package splitclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/template"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/plan"
)

// Default templates of the title and comment of a change (Config.TitleTemplate,
// Config.CommentTemplate): the revision in the title, the change's one-line reason (and
// the pull request, when known) in the comment.
const (
	DefaultTitleTemplate   = `flagsync{{if .ShortRevision}} {{.ShortRevision}}{{end}}: {{.Flag}}{{if .Environment}} in {{.Environment}}{{end}}`
	DefaultCommentTemplate = `{{.Reason}}{{if .PR}} ({{.PR}}){{end}}`
)

// maxReason is the most characters of a change's reason a title or comment carries.
const maxReason = 500

// ChangeInfo is what the title and comment templates see about one write.
type ChangeInfo struct {
	Revision      string // the Git revision synced ("" when the write is not from a plan)
	ShortRevision string // Revision abbreviated as Git does
	Reason        string // the change's reason, its first line, at most 500 characters
	Flag          string
	Environment   string
	Workspace     string
	PR            string // Config.PRURL
	Action        string // create, update, archive
}

type templates struct{ title, comment *template.Template }

// What errors about the templates call them: where a user sets them.
const (
	titleTemplateName   = "the title template (--split-title or " + EnvChangeTitle + ")"
	commentTemplateName = "the comment template (--split-comment or " + EnvChangeComment + ")"
)

// newTemplates parses the title and comment templates ("" takes the defaults).
func newTemplates(title, comment string) (*templates, error) {
	if title == "" {
		title = DefaultTitleTemplate
	}
	if comment == "" {
		comment = DefaultCommentTemplate
	}
	t, err := template.New("title").Option("missingkey=error").Parse(title)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", titleTemplateName, err)
	}
	c, err := template.New("comment").Option("missingkey=error").Parse(comment)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", commentTemplateName, err)
	}
	if _, _, err := (&templates{t, c}).render(ChangeInfo{}); err != nil {
		return nil, err
	}
	return &templates{t, c}, nil
}

// render returns the title and comment of a change, each on one line.
func (t *templates) render(info ChangeInfo) (title, comment string, err error) {
	var b bytes.Buffer
	if err := t.title.Execute(&b, info); err != nil {
		return "", "", fmt.Errorf("%s: %w", titleTemplateName, err)
	}
	title = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := t.comment.Execute(&b, info); err != nil {
		return "", "", fmt.Errorf("%s: %w", commentTemplateName, err)
	}
	return title, strings.TrimSpace(b.String()), nil
}

// changeInfo describes a write for the templates, from the change apply sends (see
// apply.SendingFrom) when there is one.
func (c *Client) changeInfo(ctx context.Context, w definitionWrite) ChangeInfo {
	info := ChangeInfo{Flag: w.flag, Environment: w.env, Workspace: w.workspace, PR: c.cfg.PRURL}
	if s, ok := apply.SendingFrom(ctx); ok {
		info.Revision, info.ShortRevision = s.Revision, plan.ShortRevision(s.Revision)
		info.Reason = api.OneLine(s.Change.Reason)
		if r := []rune(info.Reason); len(r) > maxReason {
			info.Reason = string(r[:maxReason]) + "…"
		}
		info.Action = string(s.Change.Action)
	}
	return info
}

// definitionWrite is a request that writes a flag's definition in one environment.
type definitionWrite struct {
	workspace, flag, env string
	op                   string // create (POST), update (PATCH), replace (PUT), delete (DELETE), kill, restore
}

// parseDefinitionWrite reads what a request writes; ok is false for any other request.
func parseDefinitionWrite(req api.Request) (definitionWrite, bool) {
	p, _, _ := strings.Cut(req.Path, "?")
	rest, ok := strings.CutPrefix(p, APIPrefix+"/splits/ws/")
	if !ok {
		return definitionWrite{}, false
	}
	seg := strings.Split(rest, "/")
	for i, s := range seg {
		v, err := url.PathUnescape(s)
		if err != nil {
			return definitionWrite{}, false
		}
		seg[i] = v
	}
	if len(seg) < 4 || seg[2] != "environments" {
		return definitionWrite{}, false
	}
	w := definitionWrite{workspace: seg[0], flag: seg[1], env: seg[3]}
	switch {
	case len(seg) == 4 && req.Method == http.MethodPost:
		w.op = "create"
	case len(seg) == 4 && req.Method == http.MethodPatch:
		w.op = "update"
	case len(seg) == 4 && req.Method == http.MethodPut:
		w.op = "replace"
	case len(seg) == 4 && req.Method == http.MethodDelete:
		w.op = "delete"
	case len(seg) == 5 && req.Method == http.MethodPut && (seg[4] == "kill" || seg[4] == "restore"):
		w.op = seg[4]
	default:
		return definitionWrite{}, false
	}
	return w, true
}

// Do sends req exactly as a plan carries it and returns the response body. Reads are
// retried after any transient failure; writes only after a refusal (429, 423) or a
// connection that never opened, since a JSON Patch that appends is not idempotent: a
// write whose outcome is unknown is left to the next sync's plan. JSON Patch bodies are
// sent as application/json, as the vendor's examples do (RFC 6902's own type is
// application/json-patch+json).
//
// Every write of a flag or a definition carries Split's change tracking, the title and
// comment query parameters rendered from the templates. A write of a definition also
// gets these answers:
//   - 403 "Approvals are required": the change is filed as a change request (or found
//     already filed) and Do returns an *apply.PendingApproval; while the client knows a
//     request for the flag and environment is open (from its last read), the write is
//     not even sent; in an environment declared to require approvals
//     (Config.ApprovalEnvironments) the write is filed as a change request at once,
//     without the 403 first;
//   - 400 to a definition created killed: it is created, then killed (PUT …/kill), the
//     reading where Split takes no killed definition at creation; a creation that
//     answers killed false is killed too;
//   - 400 with an empty body: a *RefusedWriteError says the likely cause;
//   - a definition of a flag this client created moments before that Split refuses
//     (400, 422): the flag is deleted again, so that it is not left half-created.
//
// A workspace given by name is replaced by its id (see send).
func (c *Client) Do(ctx context.Context, req api.Request) (json.RawMessage, error) {
	w, isDef := parseDefinitionWrite(req)
	if !isDef {
		var q url.Values
		if fw, ok := parseFlagWrite(req); ok {
			// Flag-level writes carry the title and comment too: the workspace setting
			// speaks of feature flag changes, and an unneeded parameter is ignored.
			title, comment, err := c.templates.render(c.changeInfo(ctx, fw))
			if err != nil {
				return nil, err
			}
			q = changeQuery(title, comment)
		}
		res, err := c.sendRequest(ctx, req, q)
		if err != nil {
			return nil, err
		}
		if ws, name, ok := IsCreateFlag(req); ok {
			c.mu.Lock()
			c.created[ws+"/"+name] = true
			c.mu.Unlock()
		}
		return res.Body, nil
	}
	if cr, ok := c.pendingFor(w); ok {
		return nil, &apply.PendingApproval{Request: cr.ID, Detail: fmt.Sprintf("%s requires approvals; change request %s for %s is open, so the change is not sent", w.env, cr.OperationType, w.flag)}
	}
	info := c.changeInfo(ctx, w)
	title, comment, err := c.templates.render(info)
	if err != nil {
		return nil, err
	}
	if c.declaredApprovals(w.env) {
		// Declared to require approvals: the direct write would be refused with 403.
		return nil, c.fileChangeRequest(ctx, w, req, info, title, comment, nil)
	}
	q := changeQuery(title, comment)
	res, err := c.sendRequest(ctx, req, q)
	killed := w.op == "create" && bodyKilled(req.Body)
	switch {
	case err == nil && killed && !bodyKilled(res.Body):
		return c.kill(ctx, w, q)
	case err == nil:
		return res.Body, nil
	case approvalsRequired(err):
		return nil, c.fileChangeRequest(ctx, w, req, info, title, comment, err)
	case killed && api.HasStatus(err, http.StatusBadRequest):
		body, created, kerr := c.createThenKill(ctx, w, req, q)
		switch {
		case kerr == nil:
			return body, nil
		case created:
			return nil, kerr // the definition exists, unkilled: the next plan kills it
		}
		err = kerr
	}
	err = c.explainEmpty400(ctx, req, w, q, err)
	if w.op == "create" && (api.HasStatus(err, http.StatusBadRequest) || api.HasStatus(err, http.StatusUnprocessableEntity)) {
		err = c.rollBack(ctx, w, err)
	}
	return nil, err
}

// changeQuery is the title and comment query parameters, without an empty one.
func changeQuery(title, comment string) url.Values {
	q := url.Values{}
	if title != "" {
		q.Set("title", title)
	}
	if comment != "" {
		q.Set("comment", comment)
	}
	return q
}

// parseFlagWrite reads a write of a flag itself (create, patch, delete); ok is false for
// any other request.
func parseFlagWrite(req api.Request) (definitionWrite, bool) {
	if ws, name, ok := IsCreateFlag(req); ok {
		return definitionWrite{workspace: ws, flag: name, op: "create"}, true
	}
	if req.Method != http.MethodPatch && req.Method != http.MethodDelete {
		return definitionWrite{}, false
	}
	p, _, _ := strings.Cut(req.Path, "?")
	rest, ok := strings.CutPrefix(p, APIPrefix+"/splits/ws/")
	if !ok {
		return definitionWrite{}, false
	}
	seg := strings.Split(rest, "/")
	if len(seg) != 2 {
		return definitionWrite{}, false
	}
	ws, err1 := url.PathUnescape(seg[0])
	name, err2 := url.PathUnescape(seg[1])
	if err1 != nil || err2 != nil {
		return definitionWrite{}, false
	}
	return definitionWrite{workspace: ws, flag: name, op: strings.ToLower(req.Method)}, true
}

// sendRequest sends a planned request with extra query parameters.
func (c *Client) sendRequest(ctx context.Context, req api.Request, q url.Values) (*api.Response, error) {
	var body []byte
	if len(req.Body) > 0 {
		body = req.Body
	}
	return c.send(ctx, api.Call{Method: req.Method, Path: req.Path, Query: q, Body: body, Resend: req.Method == http.MethodGet})
}

// bodyKilled reports whether a definition (sent or answered) says killed: true.
func bodyKilled(body []byte) bool {
	var d struct {
		Killed bool `json:"killed"`
	}
	return json.Unmarshal(body, &d) == nil && d.Killed
}

// createThenKill creates a definition that Split refused to create killed without
// killed, then kills it; created says whether the definition now exists.
func (c *Client) createThenKill(ctx context.Context, w definitionWrite, req api.Request, q url.Values) (json.RawMessage, bool, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(req.Body, &m); err != nil {
		return nil, false, err
	}
	delete(m, "killed")
	body, err := json.Marshal(m)
	if err != nil {
		return nil, false, err
	}
	if _, err := c.sendRequest(ctx, api.Request{Method: req.Method, Path: req.Path, Body: body}, q); err != nil {
		return nil, false, err
	}
	c.cfg.Logger.Info("Split refused a definition created killed: created it, now killing it", "flag", w.workspace+"/"+w.flag, "env", w.env)
	res, err := c.kill(ctx, w, q)
	return res, true, err
}

// kill kills a definition just created.
func (c *Client) kill(ctx context.Context, w definitionWrite, q url.Values) (json.RawMessage, error) {
	res, err := c.sendRequest(ctx, api.Request{Method: http.MethodPut, Path: KillPath(w.workspace, w.flag, w.env), Body: json.RawMessage(`{}`)}, q)
	if err != nil {
		return nil, fmt.Errorf("kill the definition just created (Split did not create it killed): %w", err)
	}
	return res.Body, nil
}

// RefusedWriteError is a write Split refused with 400 and an empty body, with the
// likely cause.
type RefusedWriteError struct {
	Method, Path string
	Cause        string
	Err          error // the *api.Error
}

// Error names the request and the likely cause.
func (e *RefusedWriteError) Error() string {
	return fmt.Sprintf("%s %s: 400 with an empty body: %s", e.Method, e.Path, e.Cause)
}

// Unwrap returns the API's error.
func (e *RefusedWriteError) Unwrap() error { return e.Err }

// explainEmpty400 explains a definition write refused with 400 and no body: most likely
// the workspace requires a title and a comment on every change and the write lacked
// one, which the workspace's setting (GET /workspaces) tells.
func (c *Client) explainEmpty400(ctx context.Context, req api.Request, w definitionWrite, q url.Values, err error) error {
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || strings.TrimSpace(ae.Body) != "" {
		return err
	}
	path, _, _ := strings.Cut(req.Path, "?")
	e := &RefusedWriteError{Method: req.Method, Path: path, Err: err}
	ws, lerr := c.LookupWorkspace(ctx, w.workspace)
	switch {
	case lerr != nil:
		e.Cause = fmt.Sprintf("Split gave no reason, and the workspace's settings could not be read (%v); a workspace that requires a title and a comment on changes answers so", lerr)
	case ws.RequiresTitleAndComments && (q.Get("title") == "" || q.Get("comment") == ""):
		e.Cause = fmt.Sprintf("the workspace %s requires a title and a comment on every change (its requiresTitleAndComments setting), and this write had none: %s or %s rendered nothing",
			ws.Name, titleTemplateName, commentTemplateName)
	case ws.RequiresTitleAndComments:
		e.Cause = fmt.Sprintf("the workspace %s requires a title and a comment on every change (its requiresTitleAndComments setting); this write carried both (title %q), so Split refused something else without saying what",
			ws.Name, q.Get("title"))
	default:
		e.Cause = "Split gave no reason (the workspace does not require a title and a comment, the usual cause of an empty 400)"
	}
	return e
}

// rollBack deletes a flag this client created moments before whose definition Split
// refused, so that it is not left half-created (created, tagged, without its
// definition), and says so in the error.
func (c *Client) rollBack(ctx context.Context, w definitionWrite, err error) error {
	key := w.workspace + "/" + w.flag
	c.mu.Lock()
	created := c.created[key]
	c.mu.Unlock()
	if !created {
		return err
	}
	info := c.changeInfo(ctx, definitionWrite{workspace: w.workspace, flag: w.flag})
	info.Reason = fmt.Sprintf("rolled back: Split refused its definition in %s, and a flag is not left half-created", w.env)
	title, comment, _ := c.templates.render(info) // the templates rendered for this write already
	if _, derr := c.send(ctx, api.Call{Method: http.MethodDelete, Path: FlagPath(w.workspace, w.flag), Query: changeQuery(title, comment)}); derr != nil {
		return fmt.Errorf("%w; deleting flag %s, created moments before by this sync, failed too (%v): it is left without this definition", err, key, derr)
	}
	c.mu.Lock()
	delete(c.created, key)
	c.mu.Unlock()
	c.cfg.Logger.Warn("definition refused: the flag created moments before was deleted again", "flag", key, "env", w.env)
	return fmt.Errorf("%w; flag %s, created moments before by this sync, was deleted again, so that it is not left half-created", err, key)
}
