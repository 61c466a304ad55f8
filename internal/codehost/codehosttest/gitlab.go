package codehosttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// GitLab roles, weakest first.
const (
	RoleReporter   = 20
	RoleDeveloper  = 30
	RoleMaintainer = 40
)

// GitLabUser is what a token stands for on the fake GitLab: a person (personal access
// token) or a project's bot user (project access token), with a role in the project.
type GitLabUser struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Bot      bool   `json:"bot"`
	Role     int    `json:"-"`
}

// GitLabNote is a merge request note held by the fake GitLab.
type GitLabNote struct {
	ID     int64      `json:"id"`
	Body   string     `json:"body"`
	Author GitLabUser `json:"author"`
	System bool       `json:"system"`
	IID    int        `json:"-"`
}

// GitLabStatus is a commit status held by the fake GitLab.
type GitLabStatus struct {
	SHA         string
	State       string `json:"state"`
	Name        string `json:"name"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
	PipelineID  int64  `json:"pipeline_id"`
	By          string
}

// GitLab is a fake of the parts of GitLab's REST API (v4) flagsync uses, for one
// project, served under /api/v4.
type GitLab struct {
	log
	projectID   int64
	projectPath string

	tokens   map[string]GitLabUser
	notes    []*GitLabNote
	statuses []GitLabStatus
	nextID   int64
}

// NewGitLab returns a fake GitLab holding one project, reachable by its numeric id and by
// its path ("group/name"), and no token.
func NewGitLab(projectID int64, projectPath string) *GitLab {
	return &GitLab{projectID: projectID, projectPath: projectPath, tokens: map[string]GitLabUser{}, nextID: 5000}
}

// Start serves the fake on a loopback server until the test ends, and fails the test for
// any request it did not expect. The API base URL is the server's URL + "/api/v4".
func (f *GitLab) Start(t testing.TB) *httptest.Server {
	t.Helper()
	return start(t, f, &f.log, "GitLab")
}

// AddToken makes token stand for user.
func (f *GitLab) AddToken(token string, user GitLabUser) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = user
}

// AddNote puts a note by author on merge request iid, as if posted earlier, and returns
// its id.
func (f *GitLab) AddNote(iid int, author GitLabUser, body string, system bool) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.notes = append(f.notes, &GitLabNote{ID: f.nextID, Body: body, Author: author, System: system, IID: iid})
	return f.nextID
}

// Notes returns the notes of merge request iid, oldest first.
func (f *GitLab) Notes(iid int) []GitLabNote {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []GitLabNote
	for _, n := range f.notes {
		if n.IID == iid {
			out = append(out, *n)
		}
	}
	return out
}

// Statuses returns the commit statuses set so far.
func (f *GitLab) Statuses() []GitLabStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]GitLabStatus(nil), f.statuses...)
}

// ServeHTTP answers one API call.
func (f *GitLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.route)
}

func (f *GitLab) route(w http.ResponseWriter, r *http.Request, body []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	user, known := f.tokens[r.Header.Get("PRIVATE-TOKEN")]
	if !known {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "401 Unauthorized"})
		return true
	}
	path, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/v4/")
	if !ok {
		return false
	}
	if path == "user" && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, user)
		return true
	}
	parts := strings.Split(path, "/")
	if len(parts) < 3 || parts[0] != "projects" {
		return false
	}
	project, err := url.PathUnescape(parts[1])
	if err != nil || project != f.projectPath && project != strconv.FormatInt(f.projectID, 10) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Project Not Found"})
		return true
	}
	return f.routeProject(w, r, user, parts[2:], body)
}

// routeProject answers a call below the project: merge request notes and statuses.
func (f *GitLab) routeProject(w http.ResponseWriter, r *http.Request, user GitLabUser, parts []string, body []byte) bool {
	switch {
	case len(parts) == 3 && parts[0] == "merge_requests" && parts[2] == "notes":
		iid, err := strconv.Atoi(parts[1])
		if err != nil {
			return false
		}
		switch r.Method {
		case http.MethodGet:
			f.listNotes(w, r, iid)
		case http.MethodPost:
			f.createNote(w, user, iid, body)
		default:
			return false
		}
		return true
	case len(parts) == 4 && parts[0] == "merge_requests" && parts[2] == "notes" && r.Method == http.MethodPut:
		iid, err1 := strconv.Atoi(parts[1])
		id, err2 := strconv.ParseInt(parts[3], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		f.updateNote(w, user, iid, id, body)
		return true
	case len(parts) == 2 && parts[0] == "statuses" && r.Method == http.MethodPost:
		f.createStatus(w, user, parts[1], body)
		return true
	}
	return false
}

// listNotes answers a page of notes with GitLab's paging headers. GitLab lists notes
// newest first unless asked otherwise.
func (f *GitLab) listNotes(w http.ResponseWriter, r *http.Request, iid int) {
	q := r.URL.Query()
	per := 20
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		per = min(v, 100)
	}
	page := 1
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	var all []GitLabNote
	for _, n := range f.notes {
		if n.IID == iid {
			all = append(all, *n)
		}
	}
	if q.Get("sort") != "asc" {
		sort.SliceStable(all, func(i, j int) bool { return all[i].ID > all[j].ID })
	}
	last := max(1, (len(all)+per-1)/per)
	lo, hi := min((page-1)*per, len(all)), min(page*per, len(all))
	next := ""
	if page < last {
		next = strconv.Itoa(page + 1)
	}
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(per))
	h.Set("X-Next-Page", next)
	h.Set("X-Total", strconv.Itoa(len(all)))
	h.Set("X-Total-Pages", strconv.Itoa(last))
	out := all[lo:hi]
	if out == nil {
		out = []GitLabNote{}
	}
	writeJSON(w, http.StatusOK, out)
}

func noteBody(w http.ResponseWriter, body []byte) (string, bool) {
	var in struct {
		Body string `json:"body"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Body == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body is missing"})
		return "", false
	}
	if utf8.RuneCountInString(in.Body) > 1000000 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": map[string][]string{"note": {"is too long (maximum is 1000000 characters)"}}})
		return "", false
	}
	return in.Body, true
}

func (f *GitLab) createNote(w http.ResponseWriter, user GitLabUser, iid int, body []byte) {
	text, ok := noteBody(w, body)
	if !ok {
		return
	}
	f.nextID++
	n := &GitLabNote{ID: f.nextID, Body: text, Author: user, IID: iid}
	f.notes = append(f.notes, n)
	writeJSON(w, http.StatusCreated, n)
}

// updateNote edits a note: its author may, and so may a Maintainer, whoever wrote it.
// System notes cannot be edited.
func (f *GitLab) updateNote(w http.ResponseWriter, user GitLabUser, iid int, id int64, body []byte) {
	for _, n := range f.notes {
		if n.ID != id || n.IID != iid {
			continue
		}
		if n.System || n.Author.ID != user.ID && user.Role < RoleMaintainer {
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "403 Forbidden"})
			return
		}
		text, ok := noteBody(w, body)
		if !ok {
			return
		}
		n.Body = text
		writeJSON(w, http.StatusOK, n)
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Not found"})
}

func (f *GitLab) createStatus(w http.ResponseWriter, user GitLabUser, sha string, body []byte) {
	if user.Role < RoleDeveloper {
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "403 Forbidden"})
		return
	}
	var st GitLabStatus
	if err := json.Unmarshal(body, &st); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON"})
		return
	}
	switch st.State {
	case "pending", "running", "success", "failed", "canceled", "skipped":
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "state does not have a valid value"})
		return
	}
	if !sha1RE.MatchString(sha) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "404 Commit Not Found"})
		return
	}
	if utf8.RuneCountInString(st.Description) > 255 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": map[string][]string{"description": {"is too long (maximum is 255 characters)"}}})
		return
	}
	if st.Name == "" {
		st.Name = "default"
	}
	st.SHA, st.By = sha, user.Username
	f.statuses = append(f.statuses, st)
	writeJSON(w, http.StatusCreated, map[string]any{"id": len(f.statuses), "sha": sha, "status": st.State, "name": st.Name, "description": st.Description})
}

// String renders a note for test failures.
func (n GitLabNote) String() string {
	return fmt.Sprintf("note %d by %s: %q", n.ID, n.Author.Username, n.Body)
}
