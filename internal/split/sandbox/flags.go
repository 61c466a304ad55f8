package splitsandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/flagsync/flagsync/internal/fakeapi"
	"github.com/flagsync/flagsync/internal/jsonpatch"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

// Paging of list calls: Split documents limit's default 20 and maximum 50 for the
// definitions list; the flags list is paged the same way here.
const (
	defaultLimit = 20
	maxLimit     = 50
)

// flagNamePattern is Split's rule for flag names: a letter, then letters, digits, '_'
// and '-'; reservedFlagNames cannot name a flag.
var (
	flagNamePattern   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	reservedFlagNames = []string{"datetime", "string", "set", "integer"}
)

type flagKey struct{ ws, name string }

// flagDoc is one flag as the sandbox holds it.
type flagDoc struct {
	ID           string                     `json:"id"`
	Workspace    string                     `json:"workspace"`
	Name         string                     `json:"name"`
	Description  string                     `json:"description"`
	TrafficType  string                     `json:"trafficType"`
	Tags         []string                   `json:"tags"`
	CreationTime int64                      `json:"creationTime"`
	Definitions  map[string]json.RawMessage `json:"definitions"` // environment name → definition in the read shape
}

type ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type tag struct {
	Name string `json:"name"`
}

func envID(name string) string  { return "env-" + name }
func typeID(name string) string { return "tt-" + name }

// view is the flag in the API's read shape.
func (f *flagDoc) view() map[string]any {
	tags := make([]tag, 0, len(f.Tags))
	for _, t := range f.Tags {
		tags = append(tags, tag{t})
	}
	return map[string]any{
		"id": f.ID, "name": f.Name, "description": f.Description,
		"trafficType":  ref{typeID(f.TrafficType), f.TrafficType},
		"creationTime": f.CreationTime, "tags": tags,
	}
}

// --- routing ----------------------------------------------------------------------

// segments splits the path below the API prefix into its unescaped segments; ok is
// false for a path outside it or with an empty segment.
func segments(r *http.Request) ([]string, bool) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), splitclient.APIPrefix+"/")
	if !ok {
		return nil, false
	}
	raw := strings.Split(rest, "/")
	seg := make([]string, len(raw))
	for i, p := range raw {
		v, err := url.PathUnescape(p)
		if err != nil || v == "" {
			return nil, false
		}
		seg[i] = v
	}
	return seg, true
}

func (s *Server) route(r *http.Request, body []byte, who string) response {
	seg, ok := segments(r)
	if !ok {
		return notFound(r)
	}
	switch seg[0] {
	case "workspaces":
		return s.routeWorkspaces(r, seg)
	case "changeRequests":
		return s.routeChangeRequests(r, seg, body, who)
	}
	return s.routeFlags(r, seg, body)
}

// routeFlags routes the flags and definitions endpoints (and the environments and
// traffic types lists).
func (s *Server) routeFlags(r *http.Request, seg []string, body []byte) response {
	m := r.Method
	switch {
	case len(seg) == 3 && seg[0] == "environments" && seg[1] == "ws":
		if m != http.MethodGet {
			return methodNotAllowed(http.MethodGet)
		}
		return s.listEnvironments(seg[2])
	case len(seg) == 3 && seg[0] == "trafficTypes" && seg[1] == "ws":
		if m != http.MethodGet {
			return methodNotAllowed(http.MethodGet)
		}
		return s.listTrafficTypes(seg[2])
	case len(seg) < 3 || seg[0] != "splits" || seg[1] != "ws":
		return notFound(r)
	}
	ws := seg[2]
	if !s.knownWorkspace(ws) {
		return errorResponse(http.StatusNotFound, "workspace %q not found", ws)
	}
	return s.routeWorkspaceFlags(r, ws, seg[3:], body)
}

// routeWorkspaceFlags routes the endpoints under splits/ws/{ws} (p: what follows it):
// the flag list, a flag's creation, the definitions of an environment, one flag and
// one flag's definitions.
func (s *Server) routeWorkspaceFlags(r *http.Request, ws string, p []string, body []byte) response {
	m := r.Method
	switch {
	case len(p) == 0:
		if m != http.MethodGet {
			return methodNotAllowed(http.MethodGet)
		}
		return s.listFlags(r, ws)
	case len(p) == 2 && p[0] == "trafficTypes" && m == http.MethodPost:
		return s.createFlag(r, ws, p[1], body)
	case len(p) == 2 && p[0] == "environments" && m == http.MethodGet:
		return s.listDefinitions(r, ws, p[1])
	case len(p) == 1:
		return s.routeFlag(r, ws, p[0], body)
	case (len(p) == 3 || len(p) == 4) && p[1] == "environments":
		return s.routeDefinition(r, ws, p, body)
	}
	return notFound(r)
}

// routeFlag routes the endpoints of one flag: read, patch and delete.
func (s *Server) routeFlag(r *http.Request, ws, flag string, body []byte) response {
	switch r.Method {
	case http.MethodGet:
		return s.getFlag(ws, flag)
	case http.MethodPatch:
		return s.patchFlag(r, ws, flag, body)
	case http.MethodDelete:
		return s.deleteFlag(ws, flag)
	}
	return methodNotAllowed(http.MethodGet, http.MethodPatch, http.MethodDelete)
}

// routeDefinition routes the endpoints of one flag's definition in one environment
// (p: flag, "environments", env[, kill|restore]); every write goes through gate.
func (s *Server) routeDefinition(r *http.Request, ws string, p []string, body []byte) response {
	m := r.Method
	if len(p) == 4 {
		switch {
		case p[3] != "kill" && p[3] != "restore":
			return notFound(r)
		case m != http.MethodPut:
			return methodNotAllowed(http.MethodPut)
		}
	}
	if len(p) == 3 && m == http.MethodGet {
		return s.getDefinition(ws, p[0], p[2])
	}
	if resp := s.gate(r, ws, p[2]); resp != nil {
		return *resp
	}
	switch {
	case len(p) == 4:
		return s.setKilled(ws, p[0], p[2], p[3] == "kill")
	case m == http.MethodPost:
		return s.createDefinition(ws, p[0], p[2], body)
	case m == http.MethodPut:
		return s.putDefinition(ws, p[0], p[2], body)
	case m == http.MethodPatch:
		return s.patchDefinition(r, ws, p[0], p[2], body)
	case m == http.MethodDelete:
		return s.deleteDefinition(ws, p[0], p[2])
	}
	return methodNotAllowed(http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete)
}

// gate answers a definition write in a workspace that requires a title and a comment
// without them (400, empty body, as Split answers), and one in an environment that
// requires approvals (403, "Approvals are required"); nil lets the write through.
func (s *Server) gate(r *http.Request, ws, envParam string) *response {
	q := r.URL.Query()
	if slices.Contains(s.titled, ws) && (strings.TrimSpace(q.Get("title")) == "" || strings.TrimSpace(q.Get("comment")) == "") {
		return &response{Status: http.StatusBadRequest, Header: http.Header{}}
	}
	if env, ok := s.environment(envParam); ok && slices.Contains(s.approvals, env) {
		resp := approvalsRequired(envID(env))
		return &resp
	}
	return nil
}

func notFound(r *http.Request) response {
	return errorResponse(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
}

func methodNotAllowed(allowed ...string) response {
	resp := errorResponse(http.StatusMethodNotAllowed, "method not allowed; use %s", strings.Join(allowed, " or "))
	resp.Header.Set("Allow", strings.Join(allowed, ", "))
	return resp
}

func (s *Server) knownWorkspace(ws string) bool { return len(s.ws) == 0 || slices.Contains(s.ws, ws) }

// environment resolves an environment id or name to its name.
func (s *Server) environment(idOrName string) (string, bool) {
	for _, e := range s.envs {
		if e == idOrName || envID(e) == idOrName {
			return e, true
		}
	}
	return "", false
}

func (s *Server) trafficType(idOrName string) (string, bool) {
	for _, t := range s.types {
		if t == idOrName || typeID(t) == idOrName {
			return t, true
		}
	}
	return "", false
}

func (s *Server) listEnvironments(ws string) response {
	if !s.knownWorkspace(ws) {
		return errorResponse(http.StatusNotFound, "workspace %q not found", ws)
	}
	out := make([]map[string]any, 0, len(s.envs))
	for _, e := range s.envs {
		out = append(out, map[string]any{"id": envID(e), "name": e, "production": strings.Contains(strings.ToLower(e), "prod")})
	}
	return fakeapi.JSON(http.StatusOK, out)
}

func (s *Server) listTrafficTypes(ws string) response {
	if !s.knownWorkspace(ws) {
		return errorResponse(http.StatusNotFound, "workspace %q not found", ws)
	}
	out := make([]ref, 0, len(s.types))
	for _, t := range s.types {
		out = append(out, ref{typeID(t), t})
	}
	return fakeapi.JSON(http.StatusOK, out)
}

// paging reads offset and limit.
func paging(q url.Values) (offset, limit int, err error) {
	offset, limit = 0, defaultLimit
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("offset %q: want a whole number >= 0", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return 0, 0, fmt.Errorf("limit %q: want a whole number >= 1", v)
		}
	}
	return offset, min(limit, maxLimit), nil
}

func pageOf(items []any, offset, limit int) map[string]any {
	total := len(items)
	lo, hi := min(offset, total), min(offset+limit, total)
	objects := items[lo:hi]
	if objects == nil {
		objects = []any{}
	}
	return map[string]any{"objects": objects, "offset": offset, "limit": limit, "totalCount": total}
}

// sortedFlags returns the workspace's flags by name. The caller holds s.mu.
func (s *Server) sortedFlags(ws string) []*flagDoc {
	var out []*flagDoc
	for k, f := range s.flags {
		if k.ws == ws {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b *flagDoc) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (s *Server) listFlags(r *http.Request, ws string) response {
	offset, limit, err := paging(r.URL.Query())
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []any
	for _, f := range s.sortedFlags(ws) {
		items = append(items, f.view())
	}
	return fakeapi.JSON(http.StatusOK, pageOf(items, offset, limit))
}

func (s *Server) listDefinitions(r *http.Request, ws, envParam string) response {
	env, ok := s.environment(envParam)
	if !ok {
		return errorResponse(http.StatusNotFound, "environment %q not found", envParam)
	}
	offset, limit, err := paging(r.URL.Query())
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var items []any
	for _, f := range s.sortedFlags(ws) {
		if d, ok := f.Definitions[env]; ok {
			items = append(items, d)
		}
	}
	return fakeapi.JSON(http.StatusOK, pageOf(items, offset, limit))
}

func (s *Server) getFlag(ws, name string) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flags[flagKey{ws, name}]
	if f == nil {
		return errorResponse(http.StatusNotFound, "feature flag %q not found", name)
	}
	return fakeapi.JSON(http.StatusOK, f.view())
}

// decodeStrict decodes JSON refusing unknown members and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

type createFlagBody struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Tags        []tag           `json:"tags"`
	Owners      json.RawMessage `json:"owners"` // accepted, not kept
}

func (s *Server) createFlag(r *http.Request, ws, typeParam string, body []byte) response {
	tt, ok := s.trafficType(typeParam)
	if !ok {
		return errorResponse(http.StatusNotFound, "traffic type %q not found", typeParam)
	}
	var b createFlagBody
	if err := decodeStrict(body, &b); err != nil {
		return errorResponse(http.StatusBadRequest, "body: %v", err)
	}
	if msg := flagNameProblem(b.Name); msg != "" {
		return errorResponse(http.StatusBadRequest, "name: %s", msg)
	}
	tags, msg := tagNames(b.Tags)
	if msg != "" {
		return errorResponse(http.StatusBadRequest, "tags: %s", msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := flagKey{ws, b.Name}
	if s.flags[k] != nil {
		return errorResponse(http.StatusConflict, "feature flag %q already exists", b.Name)
	}
	f := &flagDoc{
		ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", s.nextID, s.nextID), Workspace: ws, Name: b.Name,
		Description: b.Description, TrafficType: tt, Tags: tags, CreationTime: s.now().UnixMilli(),
		Definitions: map[string]json.RawMessage{},
	}
	s.flags[k] = f
	s.nextID++
	if resp, failed := s.persist(); failed {
		delete(s.flags, k)
		return resp
	}
	return fakeapi.JSON(http.StatusOK, f.view())
}

func flagNameProblem(name string) string {
	switch {
	case !flagNamePattern.MatchString(name):
		return fmt.Sprintf("%q is not a flag name: start with a letter, then letters, digits, '_' or '-'", name)
	case slices.Contains(reservedFlagNames, strings.ToLower(name)):
		return fmt.Sprintf("%q is a reserved word", name)
	}
	return ""
}

func tagNames(ts []tag) ([]string, string) {
	out := []string{}
	for _, t := range ts {
		if strings.TrimSpace(t.Name) == "" {
			return nil, "a tag needs a name"
		}
		if !slices.Contains(out, t.Name) {
			out = append(out, t.Name)
		}
	}
	return out, ""
}

// patchContentType checks a JSON Patch body's Content-Type: the vendor's examples send
// application/json, RFC 6902 names application/json-patch+json; both are accepted.
func patchContentType(r *http.Request) (response, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && mt != "application/json-patch+json") {
		return errorResponse(http.StatusUnsupportedMediaType, "Content-Type must be application/json or application/json-patch+json"), false
	}
	return response{}, true
}

// patchError is the answer to a refused patch: 409 when a test failed (the resource is
// not in the state the patch was written for), 400 otherwise. Nothing was changed.
func patchError(err error) response {
	var pe *jsonpatch.Error
	if errors.As(err, &pe) && pe.TestFailed {
		return errorResponse(http.StatusConflict, "%v", err)
	}
	return errorResponse(http.StatusBadRequest, "%v", err)
}

func (s *Server) patchFlag(r *http.Request, ws, name string, body []byte) response {
	if resp, ok := patchContentType(r); !ok {
		return resp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flags[flagKey{ws, name}]
	if f == nil {
		return errorResponse(http.StatusNotFound, "feature flag %q not found", name)
	}
	before, _ := json.Marshal(f.view())
	after, err := jsonpatch.Apply(before, body)
	if err != nil {
		return patchError(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(after, &doc); err != nil {
		return errorResponse(http.StatusBadRequest, "the patched flag is not an object")
	}
	var old map[string]json.RawMessage
	_ = json.Unmarshal(before, &old)
	for k, v := range old {
		if k != "description" && k != "tags" && !jsonEqual(v, doc[k]) {
			return errorResponse(http.StatusBadRequest, "%s is read-only: only description and tags can be changed", k)
		}
	}
	for k := range doc {
		if _, ok := old[k]; !ok {
			return errorResponse(http.StatusBadRequest, "unknown member %q", k)
		}
	}
	var desc string
	if err := json.Unmarshal(doc["description"], &desc); err != nil {
		return errorResponse(http.StatusBadRequest, "description: must be a string")
	}
	var ts []tag
	if len(doc["tags"]) > 0 && string(doc["tags"]) != "null" {
		if err := decodeStrict(doc["tags"], &ts); err != nil {
			return errorResponse(http.StatusBadRequest, "tags: must be a list of {\"name\": ...}: %v", err)
		}
	}
	tags, msg := tagNames(ts)
	if msg != "" {
		return errorResponse(http.StatusBadRequest, "tags: %s", msg)
	}
	prevDesc, prevTags := f.Description, f.Tags
	f.Description, f.Tags = desc, tags
	if resp, failed := s.persist(); failed {
		f.Description, f.Tags = prevDesc, prevTags
		return resp
	}
	return fakeapi.JSON(http.StatusOK, f.view())
}

func jsonEqual(a, b json.RawMessage) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return jsonpatch.Equal(va, vb)
}

func (s *Server) deleteFlag(ws, name string) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := flagKey{ws, name}
	f := s.flags[k]
	if f == nil {
		return errorResponse(http.StatusNotFound, "feature flag %q not found", name)
	}
	delete(s.flags, k)
	if resp, failed := s.persist(); failed {
		s.flags[k] = f
		return resp
	}
	return fakeapi.JSON(http.StatusOK, true)
}

// lookupDefinition finds a flag's definition in an environment, or the 404 to answer.
// The caller holds s.mu.
func (s *Server) lookupDefinition(ws, name, envParam string) (*flagDoc, string, json.RawMessage, *response) {
	f, env, resp := s.lookup(ws, name, envParam)
	if resp != nil {
		return nil, "", nil, resp
	}
	d, ok := f.Definitions[env]
	if !ok {
		resp := errorResponse(http.StatusNotFound, "feature flag %q is not configured in environment %s", name, env)
		return nil, "", nil, &resp
	}
	return f, env, d, nil
}

// replaceDefinition stores d as f's definition in env, keeping its creation time, and
// saves the state; if saving fails the definition goes back to before. The caller
// holds s.mu.
func (s *Server) replaceDefinition(f *flagDoc, env string, before json.RawMessage, d splitmodel.Definition) response {
	var created struct {
		CreationTime int64 `json:"creationTime"`
	}
	_ = json.Unmarshal(before, &created)
	f.Definitions[env] = stored(f, env, d, created.CreationTime, s.now().UnixMilli())
	if resp, failed := s.persist(); failed {
		f.Definitions[env] = before
		return resp
	}
	return rawResponse(f.Definitions[env])
}

// lookup finds a flag and resolves an environment. The caller holds s.mu.
func (s *Server) lookup(ws, name, envParam string) (*flagDoc, string, *response) {
	env, ok := s.environment(envParam)
	if !ok {
		resp := errorResponse(http.StatusNotFound, "environment %q not found", envParam)
		return nil, "", &resp
	}
	f := s.flags[flagKey{ws, name}]
	if f == nil {
		resp := errorResponse(http.StatusNotFound, "feature flag %q not found", name)
		return nil, "", &resp
	}
	return f, env, nil
}

func (s *Server) getDefinition(ws, name, envParam string) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, d, resp := s.lookupDefinition(ws, name, envParam)
	if resp != nil {
		return *resp
	}
	return rawResponse(d)
}

func rawResponse(b json.RawMessage) response {
	return response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}
}

func (s *Server) createDefinition(ws, name, envParam string, body []byte) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, env, resp := s.lookup(ws, name, envParam)
	if resp != nil {
		return *resp
	}
	if _, exists := f.Definitions[env]; exists {
		return errorResponse(http.StatusConflict, "feature flag %q is already configured in environment %s; update it instead", name, env)
	}
	d, err := readDefinition(body, nil)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	if s.killAfter && d.Killed {
		return errorResponse(http.StatusBadRequest, "killed cannot be set when a definition is created: create it, then kill it (PUT .../kill)")
	}
	if msg := s.dependencyProblem(ws, env, d); msg != "" {
		return errorResponse(http.StatusBadRequest, "%s", msg)
	}
	now := s.now().UnixMilli()
	f.Definitions[env] = stored(f, env, d, now, now)
	if resp, failed := s.persist(); failed {
		delete(f.Definitions, env)
		return resp
	}
	return rawResponse(f.Definitions[env])
}

// patchDefinition applies an RFC 6902 patch to the stored definition, all or nothing:
// a failed test answers 409, any other failing or invalid operation 400, and so does a
// result that is not a valid definition or that changes a server-owned member.
func (s *Server) patchDefinition(r *http.Request, ws, name, envParam string, body []byte) response {
	if resp, ok := patchContentType(r); !ok {
		return resp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, env, before, resp := s.lookupDefinition(ws, name, envParam)
	if resp != nil {
		return *resp
	}
	after, err := jsonpatch.Apply(before, body)
	if err != nil {
		return patchError(err)
	}
	d, err := readDefinition(after, before)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "the patched definition is not valid: %v", err)
	}
	if msg := s.dependencyProblem(ws, env, d); msg != "" {
		return errorResponse(http.StatusBadRequest, "%s", msg)
	}
	return s.replaceDefinition(f, env, before, d)
}

// putDefinition replaces a flag's definition in an environment whole (Split's full
// update): the body is a definition in the write shape, which must be valid.
func (s *Server) putDefinition(ws, name, envParam string, body []byte) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, env, before, resp := s.lookupDefinition(ws, name, envParam)
	if resp != nil {
		return *resp
	}
	d, err := readDefinition(body, nil)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	if msg := s.dependencyProblem(ws, env, d); msg != "" {
		return errorResponse(http.StatusBadRequest, "%s", msg)
	}
	return s.replaceDefinition(f, env, before, d)
}

// dependencyProblem says why d cannot be written in env of workspace ws: an IN_SPLIT
// matcher names a flag that is not configured there, or a treatment it does not have
// there ("" when every dependency holds). The caller holds s.mu.
func (s *Server) dependencyProblem(ws, env string, d splitmodel.Definition) string {
	for _, dep := range d.Dependencies() {
		f := s.flags[flagKey{ws, dep.SplitName}]
		if f == nil {
			return fmt.Sprintf("an IN_SPLIT matcher names feature flag %q, which does not exist", dep.SplitName)
		}
		raw, ok := f.Definitions[env]
		if !ok {
			return fmt.Sprintf("an IN_SPLIT matcher names feature flag %q, which is not configured in environment %s", dep.SplitName, env)
		}
		_, other, err := splitclient.DecodeDefinition(raw)
		if err != nil {
			return err.Error()
		}
		if !slices.Contains(other.TreatmentNames(), dep.Treatment) {
			return fmt.Sprintf("an IN_SPLIT matcher names treatment %q of feature flag %q, which has no such treatment in environment %s", dep.Treatment, dep.SplitName, env)
		}
	}
	return ""
}

func (s *Server) setKilled(ws, name, envParam string, killed bool) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, env, before, resp := s.lookupDefinition(ws, name, envParam)
	if resp != nil {
		return *resp
	}
	_, d, err := splitclient.DecodeDefinition(before)
	if err != nil {
		return errorResponse(http.StatusInternalServerError, "%v", err)
	}
	d.Killed = killed
	return s.replaceDefinition(f, env, before, d)
}

func (s *Server) deleteDefinition(ws, name, envParam string) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, env, before, resp := s.lookupDefinition(ws, name, envParam)
	if resp != nil {
		return *resp
	}
	delete(f.Definitions, env)
	if resp, failed := s.persist(); failed {
		f.Definitions[env] = before
		return resp
	}
	return fakeapi.JSON(http.StatusOK, true)
}

// --- definitions --------------------------------------------------------------------

// serverMembers are the members of a stored definition that the server owns: a patch
// must leave them as they are, and a create may not set them.
var serverMembers = []string{"name", "environment", "trafficType", "creationTime", "lastUpdateTime", "lastTrafficReceivedAt", "flagSets"}

type strictDefinition struct {
	Name                  json.RawMessage  `json:"name"`
	Environment           json.RawMessage  `json:"environment"`
	TrafficType           json.RawMessage  `json:"trafficType"`
	CreationTime          json.RawMessage  `json:"creationTime"`
	LastUpdateTime        json.RawMessage  `json:"lastUpdateTime"`
	LastTrafficReceivedAt json.RawMessage  `json:"lastTrafficReceivedAt"`
	FlagSets              json.RawMessage  `json:"flagSets"`
	Comment               *string          `json:"comment"`
	Killed                *bool            `json:"killed"`
	ImpressionsDisabled   *bool            `json:"impressionsDisabled"`
	Treatments            []strictTreatmnt `json:"treatments"`
	DefaultTreatment      *string          `json:"defaultTreatment"`
	BaselineTreatment     *string          `json:"baselineTreatment"`
	TrafficAllocation     *json.Number     `json:"trafficAllocation"`
	Rules                 []strictRule     `json:"rules"`
	DefaultRule           []strictBucket   `json:"defaultRule"`
}

type strictTreatmnt struct {
	Name           string   `json:"name"`
	Description    *string  `json:"description"`
	Configurations *string  `json:"configurations"`
	Keys           []string `json:"keys"`
	Segments       []string `json:"segments"`
}

type strictRule struct {
	Condition struct {
		Combiner *string              `json:"combiner"`
		Matchers []splitmodel.Matcher `json:"matchers"`
	} `json:"condition"`
	Buckets []strictBucket `json:"buckets"`
}

type strictBucket struct {
	Treatment string      `json:"treatment"`
	Size      json.Number `json:"size"`
}

// wholeNumber reads a JSON number that must be a whole number.
func wholeNumber(n json.Number, what string) (int, error) {
	i, err := strconv.Atoi(string(n))
	if err != nil {
		f, ferr := n.Float64()
		if ferr != nil || f != float64(int(f)) {
			return 0, fmt.Errorf("%s: must be a whole number, got %s", what, n)
		}
		i = int(f)
	}
	return i, nil
}

// readDefinition reads a definition body strictly (unknown members, wrong types) and
// validates it. before is the stored definition a patch started from (nil for a
// create): server-owned members must not change, and a create may not set them.
func readDefinition(body, before []byte) (splitmodel.Definition, error) {
	var w strictDefinition
	if err := decodeStrict(body, &w); err != nil {
		return splitmodel.Definition{}, err
	}
	if err := checkServerMembers(body, before); err != nil {
		return splitmodel.Definition{}, err
	}
	d, err := w.definition()
	if err != nil {
		return splitmodel.Definition{}, err
	}
	if ps := splitmodel.Validate(&d); len(ps) > 0 {
		msgs := make([]string, len(ps))
		for i, p := range ps {
			msgs[i] = p.String()
		}
		return splitmodel.Definition{}, errors.New(strings.Join(msgs, "; "))
	}
	return d, nil
}

// checkServerMembers refuses a body that sets a member the server owns: a create (before
// nil) may set none but the name, a patch must leave each as it was in before.
func checkServerMembers(body, before []byte) error {
	var got map[string]json.RawMessage
	if err := json.Unmarshal(body, &got); err != nil {
		return err
	}
	var was map[string]json.RawMessage
	if before != nil {
		_ = json.Unmarshal(before, &was)
	}
	for _, m := range serverMembers {
		if before == nil {
			if _, set := got[m]; set && m != "name" {
				return fmt.Errorf("%s is set by the server", m)
			}
			continue
		}
		if !jsonEqual(orNull(got[m]), orNull(was[m])) {
			return fmt.Errorf("%s is read-only", m)
		}
	}
	return nil
}

// definition converts the strictly read body to the model, before validation: absent
// optional members take their zero values, sizes must be whole numbers.
func (w *strictDefinition) definition() (splitmodel.Definition, error) {
	if w.DefaultTreatment == nil {
		return splitmodel.Definition{}, errors.New("defaultTreatment is required")
	}
	d := splitmodel.Definition{DefaultTreatment: *w.DefaultTreatment}
	if w.Killed != nil {
		d.Killed = *w.Killed
	}
	if w.ImpressionsDisabled != nil {
		d.ImpressionsDisabled = *w.ImpressionsDisabled
	}
	if w.BaselineTreatment != nil {
		d.BaselineTreatment = *w.BaselineTreatment
	}
	if w.TrafficAllocation != nil {
		a, err := wholeNumber(*w.TrafficAllocation, "trafficAllocation")
		if err != nil {
			return splitmodel.Definition{}, err
		}
		d.TrafficAllocation = &a
	}
	d.Treatments = modelTreatments(w.Treatments)
	var err error
	if d.Rules, err = modelRules(w.Rules); err != nil {
		return splitmodel.Definition{}, err
	}
	if w.DefaultRule == nil {
		return splitmodel.Definition{}, errors.New("defaultRule is required")
	}
	if d.DefaultRule, err = modelBuckets(w.DefaultRule, "defaultRule"); err != nil {
		return splitmodel.Definition{}, err
	}
	return d, nil
}

func modelTreatments(ts []strictTreatmnt) []splitmodel.Treatment {
	var out []splitmodel.Treatment
	for _, t := range ts {
		mt := splitmodel.Treatment{Name: t.Name, Keys: t.Keys, Segments: t.Segments}
		if t.Description != nil {
			mt.Description = *t.Description
		}
		if t.Configurations != nil {
			mt.Configurations = *t.Configurations
		}
		out = append(out, mt)
	}
	return out
}

// modelRules converts the rules; a condition may only combine its matchers with AND.
func modelRules(rs []strictRule) ([]splitmodel.Rule, error) {
	var out []splitmodel.Rule
	for i, r := range rs {
		if c := r.Condition.Combiner; c != nil && *c != "AND" {
			return nil, fmt.Errorf("rules[%d].condition.combiner: only AND is supported", i)
		}
		bs, err := modelBuckets(r.Buckets, fmt.Sprintf("rules[%d].buckets", i))
		if err != nil {
			return nil, err
		}
		out = append(out, splitmodel.Rule{Condition: splitmodel.Condition{Matchers: r.Condition.Matchers}, Buckets: bs})
	}
	return out, nil
}

// modelBuckets converts the buckets found at the path at, whose sizes must be whole
// numbers.
func modelBuckets(bs []strictBucket, at string) ([]splitmodel.Bucket, error) {
	var out []splitmodel.Bucket
	for i, b := range bs {
		n, err := wholeNumber(b.Size, fmt.Sprintf("%s[%d].size", at, i))
		if err != nil {
			return nil, err
		}
		out = append(out, splitmodel.Bucket{Treatment: b.Treatment, Size: n})
	}
	return out, nil
}

func orNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

// stored is a definition as the server keeps and returns it: the write shape plus the
// members the server owns, and the AND combiner on every condition, as Split reads back.
func stored(f *flagDoc, env string, d splitmodel.Definition, created, updated int64) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(splitclient.EncodeDefinition(d), &m); err != nil {
		panic(fmt.Sprintf("split sandbox: %v", err)) // the sandbox's own encoding
	}
	m["name"] = f.Name
	m["environment"] = ref{envID(env), env}
	m["trafficType"] = ref{typeID(f.TrafficType), f.TrafficType}
	m["killed"] = d.Killed
	m["impressionsDisabled"] = d.ImpressionsDisabled
	m["creationTime"] = created
	m["lastUpdateTime"] = updated
	if rules, ok := m["rules"].([]any); ok {
		for _, r := range rules {
			if c, ok := r.(map[string]any)["condition"].(map[string]any); ok {
				c["combiner"] = "AND"
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("split sandbox: %v", err))
	}
	return b
}
