package splitsandbox

import (
	"net/http"
	"slices"

	"github.com/flagsync/flagsync/internal/fakeapi"
)

// routeWorkspaces answers GET /workspaces: the account's workspaces (projects), paged
// with offset and limit, each with its id, name and requiresTitleAndComments setting.
func (s *Server) routeWorkspaces(r *http.Request, seg []string) response {
	if len(seg) != 1 {
		return notFound(r)
	}
	if r.Method != http.MethodGet {
		return methodNotAllowed(http.MethodGet)
	}
	offset, limit, err := paging(r.URL.Query())
	if err != nil {
		return errorResponse(http.StatusBadRequest, "%v", err)
	}
	var items []any
	for _, id := range s.workspaceIDs() {
		name := s.wsNames[id]
		if name == "" {
			name = id
		}
		items = append(items, map[string]any{"id": id, "name": name, "type": "workspace", "requiresTitleAndComments": slices.Contains(s.titled, id)})
	}
	return fakeapi.JSON(http.StatusOK, pageOf(items, offset, limit))
}

// workspaceIDs are the workspaces GET /workspaces lists: the configured ones, or, when
// any id is accepted, every workspace the sandbox knows of (flags, names, settings).
func (s *Server) workspaceIDs() []string {
	if len(s.ws) > 0 {
		return slices.Clone(s.ws)
	}
	s.mu.Lock()
	var out []string
	for k := range s.flags {
		out = append(out, k.ws)
	}
	s.mu.Unlock()
	for id := range s.wsNames {
		out = append(out, id)
	}
	out = append(out, s.titled...)
	slices.Sort(out)
	return slices.Compact(out)
}
