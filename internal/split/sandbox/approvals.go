package splitsandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/flagsync/flagsync/internal/fakeapi"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
)

// This file is the approval flow of Split's change control, as its documentation describes
// it: in an environment that requires approvals, a definition write answers 403
// ("Approvals are required"); the change is filed as a change request
// (POST /changeRequests/ws/{ws}/environments/{env}) with the proposed definition, an
// operation type, a title, a comment and approvers; GET /changeRequests lists the open ones
// (status REQUESTED by default, paged with a marker); another key, or a person, approves it
// (PUT /changeRequests/{id} with status APPROVED), and the change is applied (status
// PUBLISHED). The key that submitted a change request cannot approve it.

// Statuses of a change request.
const (
	StatusRequested = "REQUESTED"
	StatusApproved  = "APPROVED"
	StatusRejected  = "REJECTED"
	StatusWithdrawn = "WITHDRAWN"
	StatusPublished = "PUBLISHED"
)

// Operation types of a feature flag change request.
var operationTypes = []string{"CREATE", "UPDATE", "KILL", "RESTORE", "ARCHIVE"}

// Paging of GET /changeRequests: limit from 1 to 100, default 20.
const (
	defaultRequestLimit = 20
	maxRequestLimit     = 100
)

// changeRequest is one change request as the sandbox keeps it.
type changeRequest struct {
	ID            string          `json:"id"`
	Workspace     string          `json:"workspace"`
	Environment   string          `json:"environment"` // name
	Flag          string          `json:"flag"`
	OperationType string          `json:"operationType"`
	Definition    json.RawMessage `json:"definition,omitempty"` // CREATE and UPDATE: the proposed definition, write shape
	Title         string          `json:"title"`
	Approvers     []string        `json:"approvers"`
	Status        string          `json:"status"`
	Submitter     string          `json:"submitter"`
	Comments      []requestNote   `json:"comments"`
}

// requestNote is one comment on a change request.
type requestNote struct {
	Comment   string `json:"comment"`
	User      string `json:"user"`
	Role      string `json:"role"`
	Timestamp int64  `json:"timestamp"`
}

// ChangeRequest is a change request as tests see it.
type ChangeRequest struct {
	ID            string
	Workspace     string
	Environment   string
	Flag          string
	OperationType string
	Status        string
	Title         string
	Comment       string // the submitter's comment
	Approvers     []string
	Definition    json.RawMessage // CREATE and UPDATE: the proposed definition
}

// ChangeRequests returns every change request, in the order they were filed.
func (s *Server) ChangeRequests() []ChangeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ChangeRequest, 0, len(s.requests))
	for _, cr := range s.requests {
		c := ChangeRequest{ID: cr.ID, Workspace: cr.Workspace, Environment: cr.Environment, Flag: cr.Flag, OperationType: cr.OperationType,
			Status: cr.Status, Title: cr.Title, Approvers: slices.Clone(cr.Approvers), Definition: slices.Clone(cr.Definition)}
		if len(cr.Comments) > 0 {
			c.Comment = cr.Comments[0].Comment
		}
		out = append(out, c)
	}
	return out
}

// Approve approves an open change request as the environment's approver would, and
// applies it (its status becomes PUBLISHED). It fails when the change no longer applies.
func (s *Server) Approve(id string) error {
	return s.review(id, StatusApproved, callerApprover, "approved by a test")
}

// Reject rejects an open change request as the environment's approver would.
func (s *Server) Reject(id string) error {
	return s.review(id, StatusRejected, callerApprover, "rejected by a test")
}

func (s *Server) review(id, status, who, comment string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if resp := s.setRequestStatus(id, status, who, comment); resp.Status != http.StatusOK {
		return fmt.Errorf("%s change request %s: %d %s", strings.ToLower(status), id, resp.Status, resp.Body)
	}
	return nil
}

// approvalsRequired is Split's answer to a direct definition write in an environment
// that requires approvals.
func approvalsRequired(envID string) response {
	return fakeapi.JSON(http.StatusForbidden, map[string]any{
		"code": http.StatusForbidden, "message": "Approvals are required. orgId=sandbox-org envId=" + envID,
		"details": "", "transactionId": "sandbox",
	})
}

// routeChangeRequests routes the change request endpoints.
func (s *Server) routeChangeRequests(r *http.Request, seg []string, body []byte, who string) response {
	switch {
	case len(seg) == 1:
		if r.Method != http.MethodGet {
			return methodNotAllowed(http.MethodGet)
		}
		return s.listChangeRequests(r)
	case len(seg) == 2:
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.Method {
		case http.MethodGet:
			cr := s.request(seg[1])
			if cr == nil {
				return errorResponse(http.StatusNotFound, "change request %q not found", seg[1])
			}
			return fakeapi.JSON(http.StatusOK, s.requestView(cr))
		case http.MethodPut:
			var b struct {
				Status  string `json:"status"`
				Comment string `json:"comment"`
			}
			if err := decodeStrict(body, &b); err != nil {
				return errorResponse(http.StatusBadRequest, "body: %v", err)
			}
			return s.setRequestStatus(seg[1], b.Status, who, b.Comment)
		}
		return methodNotAllowed(http.MethodGet, http.MethodPut)
	case len(seg) == 5 && seg[1] == "ws" && seg[3] == "environments":
		if r.Method != http.MethodPost {
			return methodNotAllowed(http.MethodPost)
		}
		return s.fileChangeRequest(seg[2], seg[4], body, who)
	}
	return notFound(r)
}

// request finds a change request by id. The caller holds s.mu.
func (s *Server) request(id string) *changeRequest {
	for _, cr := range s.requests {
		if cr.ID == id {
			return cr
		}
	}
	return nil
}

// requestView is a change request in the API's read shape.
func (s *Server) requestView(cr *changeRequest) map[string]any {
	envRef := ref{envID(cr.Environment), cr.Environment}
	split := map[string]any{"name": cr.Flag, "environment": envRef}
	if len(cr.Definition) > 0 {
		var d map[string]any
		_ = json.Unmarshal(cr.Definition, &d)
		for k, v := range d {
			split[k] = v
		}
		split["name"] = cr.Flag
		split["environment"] = envRef
	}
	if cr.OperationType == "KILL" {
		split["killed"] = true
	}
	if cr.Status == StatusRequested {
		split["openChangeRequestId"] = cr.ID
	}
	approvers := cr.Approvers
	if approvers == nil {
		approvers = []string{}
	}
	return map[string]any{
		"split": split, "segment": nil, "id": cr.ID, "status": cr.Status, "title": cr.Title, "comment": nil,
		"workspace": map[string]any{"id": cr.Workspace, "type": "workspace"}, "environment": envRef,
		"approvers": approvers, "operationType": cr.OperationType, "comments": cr.Comments,
		"rolloutStatus": nil, "rolloutStatusTimestamp": nil,
	}
}

// changeRequestBody is what POST /changeRequests/ws/{ws}/environments/{env} takes.
type changeRequestBody struct {
	Split         json.RawMessage `json:"split"`
	Segment       json.RawMessage `json:"segment"`
	OperationType string          `json:"operationType"`
	Title         string          `json:"title"`
	Comment       string          `json:"comment"`
	Approvers     []string        `json:"approvers"`
	RolloutStatus *struct {
		ID string `json:"id"`
	} `json:"rolloutStatus"`
}

// fileChangeRequest files a change request for a flag's definition in an environment.
func (s *Server) fileChangeRequest(ws, envParam string, body []byte, who string) response {
	if !s.knownWorkspace(ws) {
		return errorResponse(http.StatusNotFound, "workspace %q not found", ws)
	}
	env, ok := s.environment(envParam)
	if !ok {
		return errorResponse(http.StatusNotFound, "environment %q not found", envParam)
	}
	b, name, resp := s.readRequestBody(ws, env, body)
	if resp != nil {
		return *resp
	}
	named := struct{ Name string }{name}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flags[flagKey{ws, named.Name}]
	if f == nil {
		return errorResponse(http.StatusNotFound, "feature flag %q not found", named.Name)
	}
	_, configured := f.Definitions[env]
	switch {
	case b.OperationType == "CREATE" && configured:
		return errorResponse(http.StatusConflict, "feature flag %q is already configured in environment %s", named.Name, env)
	case b.OperationType != "CREATE" && !configured:
		return errorResponse(http.StatusNotFound, "feature flag %q is not configured in environment %s", named.Name, env)
	}
	if open := s.openRequestFor(ws, named.Name, env); open != nil {
		return errorResponse(http.StatusConflict, "feature flag %q has a pending change request (%s) in environment %s", named.Name, open.ID, env)
	}
	cr := &changeRequest{ID: "cr-" + strconv.Itoa(len(s.requests)+1), Workspace: ws, Environment: env, Flag: named.Name,
		OperationType: b.OperationType, Title: b.Title, Approvers: slices.Clone(b.Approvers), Status: StatusRequested, Submitter: who,
		Comments: []requestNote{{Comment: b.Comment, User: who, Role: "SUBMITTER", Timestamp: s.now().UnixMilli()}}}
	if b.OperationType == "CREATE" || b.OperationType == "UPDATE" {
		var def map[string]json.RawMessage
		if err := json.Unmarshal(b.Split, &def); err != nil {
			return errorResponse(http.StatusBadRequest, "split: %v", err)
		}
		delete(def, "name")
		raw, _ := json.Marshal(def)
		d, err := readDefinition(raw, nil)
		if err != nil {
			return errorResponse(http.StatusBadRequest, "split: %v", err)
		}
		if msg := s.dependencyProblem(ws, env, d); msg != "" {
			return errorResponse(http.StatusBadRequest, "split: %s", msg)
		}
		cr.Definition = splitclient.EncodeDefinition(d)
	}
	s.requests = append(s.requests, cr)
	if resp, failed := s.persist(); failed {
		s.requests = s.requests[:len(s.requests)-1]
		return resp
	}
	return fakeapi.JSON(http.StatusOK, s.requestView(cr))
}

// readRequestBody reads and checks the body of a change request for an environment:
// a flag's operation, a title and comment where the workspace requires them, approvers as
// the environment wants them; it returns the flag's name, or the answer to a bad body.
func (s *Server) readRequestBody(ws, env string, body []byte) (changeRequestBody, string, *response) {
	bad := func(format string, args ...any) (changeRequestBody, string, *response) {
		resp := errorResponse(http.StatusBadRequest, format, args...)
		return changeRequestBody{}, "", &resp
	}
	var b changeRequestBody
	if err := decodeStrict(body, &b); err != nil {
		return bad("body: %v", err)
	}
	if len(b.Segment) > 0 && string(b.Segment) != "null" {
		return bad("segment change requests are not supported by the sandbox")
	}
	if !slices.Contains(operationTypes, b.OperationType) {
		return bad("operationType %q: want one of %s", b.OperationType, strings.Join(operationTypes, ", "))
	}
	if slices.Contains(s.titled, ws) && (strings.TrimSpace(b.Title) == "" || strings.TrimSpace(b.Comment) == "") {
		return bad("the workspace requires a title and a comment on every change")
	}
	if slices.Contains(s.approvals, env) {
		switch {
		case s.restricted && len(b.Approvers) > 0:
			return bad("Something was wrong") // Split's answer when the environment defines the approvers
		case !s.restricted && len(b.Approvers) == 0:
			return bad("approvers: name at least one approver (the environment lets submitters choose their approvers)")
		}
	}
	var named struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(b.Split, &named); err != nil || named.Name == "" {
		return bad("split: the feature flag's name is required")
	}
	return b, named.Name, nil
}

// listChangeRequests answers GET /changeRequests: the change requests of one status
// (REQUESTED by default), optionally of one environment (environmentId: id or name),
// paged with limit (1–100, default 20) and the after marker of the previous page.
func (s *Server) listChangeRequests(r *http.Request) response {
	q := r.URL.Query()
	status := q.Get("status")
	if status == "" {
		status = StatusRequested
	}
	limit := defaultRequestLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRequestLimit {
			return errorResponse(http.StatusBadRequest, "limit %q: want 1 to %d", v, maxRequestLimit)
		}
		limit = n
	}
	start := 0
	if v := q.Get("after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errorResponse(http.StatusBadRequest, "after %q: not a marker this server gave", v)
		}
		start = n
	}
	env := ""
	if v := q.Get("environmentId"); v != "" {
		e, ok := s.environment(v)
		if !ok {
			return errorResponse(http.StatusNotFound, "environment %q not found", v)
		}
		env = e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var matching []*changeRequest
	for _, cr := range s.requests {
		if cr.Status == status && (env == "" || cr.Environment == env) {
			matching = append(matching, cr)
		}
	}
	data := []any{}
	for i := start; i < len(matching) && i < start+limit; i++ {
		data = append(data, s.requestView(matching[i]))
	}
	var next any
	if start+limit < len(matching) {
		next = strconv.Itoa(start + limit)
	}
	return fakeapi.JSON(http.StatusOK, map[string]any{"data": data, "nextMarker": next, "previousMarker": nil, "limit": limit, "count": len(data)})
}

// setRequestStatus withdraws (the submitter), approves or rejects (another key) an open
// change request; an approved one is applied at once and becomes PUBLISHED. The caller
// holds s.mu.
func (s *Server) setRequestStatus(id, status, who, comment string) response {
	cr := s.request(id)
	if cr == nil {
		return errorResponse(http.StatusNotFound, "change request %q not found", id)
	}
	if cr.Status != StatusRequested {
		return errorResponse(http.StatusBadRequest, "change request %s is %s, not open", id, cr.Status)
	}
	switch status {
	case StatusWithdrawn:
		if who != cr.Submitter {
			return errorResponse(http.StatusForbidden, "only the submitter can withdraw change request %s", id)
		}
	case StatusApproved, StatusRejected:
		if who == cr.Submitter {
			return errorResponse(http.StatusBadRequest, "the key that submitted change request %s cannot approve or reject it", id)
		}
	default:
		return errorResponse(http.StatusBadRequest, "status %q: want APPROVED, REJECTED or WITHDRAWN", status)
	}
	prev := *cr
	cr.Comments = append(slices.Clone(cr.Comments), requestNote{Comment: comment, User: who, Role: "APPROVER", Timestamp: s.now().UnixMilli()})
	cr.Status = status
	var undo func()
	if status == StatusApproved {
		var err error
		if undo, err = s.publish(cr); err != nil {
			*cr = prev
			return errorResponse(http.StatusBadRequest, "change request %s cannot be applied: %v", id, err)
		}
		cr.Status = StatusPublished
	}
	if resp, failed := s.persist(); failed {
		*cr = prev
		if undo != nil {
			undo()
		}
		return resp
	}
	return fakeapi.JSON(http.StatusOK, s.requestView(cr))
}

// publish applies an approved change request to the flag's definition and returns how to
// undo it. The caller holds s.mu.
func (s *Server) publish(cr *changeRequest) (func(), error) {
	f := s.flags[flagKey{cr.Workspace, cr.Flag}]
	if f == nil {
		return nil, fmt.Errorf("feature flag %q no longer exists", cr.Flag)
	}
	before, configured := f.Definitions[cr.Environment]
	undo := func() {
		if configured {
			f.Definitions[cr.Environment] = before
		} else {
			delete(f.Definitions, cr.Environment)
		}
	}
	now := s.now().UnixMilli()
	created := now
	if configured {
		var c struct {
			CreationTime int64 `json:"creationTime"`
		}
		_ = json.Unmarshal(before, &c)
		created = c.CreationTime
	}
	switch cr.OperationType {
	case "CREATE", "UPDATE":
		if cr.OperationType == "CREATE" && configured {
			return nil, errors.New("the definition exists")
		}
		d, err := readDefinition(cr.Definition, nil)
		if err != nil {
			return nil, err
		}
		if msg := s.dependencyProblem(cr.Workspace, cr.Environment, d); msg != "" {
			return nil, errors.New(msg)
		}
		f.Definitions[cr.Environment] = stored(f, cr.Environment, d, created, now)
	case "KILL", "RESTORE":
		if !configured {
			return nil, errors.New("the definition does not exist")
		}
		_, d, err := splitclient.DecodeDefinition(before)
		if err != nil {
			return nil, err
		}
		d.Killed = cr.OperationType == "KILL"
		f.Definitions[cr.Environment] = stored(f, cr.Environment, d, created, now)
	case "ARCHIVE":
		delete(f.Definitions, cr.Environment)
	}
	return undo, nil
}

// openRequestFor is the open change request of a flag in an environment, if any. The
// caller holds s.mu.
func (s *Server) openRequestFor(ws, flag, env string) *changeRequest {
	for _, cr := range s.requests {
		if cr.Workspace == ws && cr.Flag == flag && cr.Environment == env && cr.Status == StatusRequested {
			return cr
		}
	}
	return nil
}
