package codehosttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// GitHubAccount is what a token stands for on the fake GitHub.
type GitHubAccount struct {
	ID    int64
	Login string
	// Installation marks an installation token (Actions' GITHUB_TOKEN, a GitHub App's):
	// GET /user is refused with 403, and what it writes is written by Login (a Bot).
	Installation bool
	// Admin lets the token edit other accounts' comments, as a repository admin can.
	Admin bool
	// PullRequests, Checks and Statuses are an installation token's permissions
	// (pull-requests: write, checks: write, statuses: write). A user token may always
	// comment and set statuses, and may never create check runs (only apps can).
	PullRequests, Checks, Statuses bool
}

func (a GitHubAccount) user() ghUser {
	typ := "User"
	if a.Installation || strings.HasSuffix(a.Login, "[bot]") {
		typ = "Bot"
	}
	return ghUser{ID: a.ID, Login: a.Login, Type: typ}
}

// ActionsToken is the account of GitHub Actions' GITHUB_TOKEN with the given permissions.
func ActionsToken(pullRequests, checks, statuses bool) GitHubAccount {
	return GitHubAccount{ID: 41898282, Login: "github-actions[bot]", Installation: true,
		PullRequests: pullRequests, Checks: checks, Statuses: statuses}
}

type ghUser struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Type  string `json:"type"`
}

// GitHubComment is a comment held by the fake GitHub.
type GitHubComment struct {
	ID     int64  `json:"id"`
	Body   string `json:"body"`
	User   ghUser `json:"user"`
	Number int    `json:"-"`
}

// CheckRun is a check run held by the fake GitHub, with every annotation it was given.
type CheckRun struct {
	ID          int64
	Name        string
	HeadSHA     string
	Status      string
	Conclusion  string
	DetailsURL  string
	Title       string
	Summary     string
	Annotations []Annotation
	By          string // the login of the token that created it
}

// Annotation is a check run annotation as GitHub takes it.
type Annotation struct {
	Path            string `json:"path"`
	StartLine       int    `json:"start_line"`
	EndLine         int    `json:"end_line"`
	StartColumn     int    `json:"start_column"`
	EndColumn       int    `json:"end_column"`
	AnnotationLevel string `json:"annotation_level"`
	Title           string `json:"title"`
	Message         string `json:"message"`
}

// GitHubStatus is a commit status held by the fake GitHub.
type GitHubStatus struct {
	SHA         string
	State       string `json:"state"`
	TargetURL   string `json:"target_url"`
	Description string `json:"description"`
	Context     string `json:"context"`
	By          string
}

// GitHub is a fake of the parts of GitHub's REST API flagsync uses, for one repository.
type GitHub struct {
	log
	repo   string // owner/name
	repoID int64
	base   string // the server's URL, for Link headers

	tokens    map[string]GitHubAccount
	comments  []*GitHubComment
	checkRuns []*CheckRun
	statuses  []GitHubStatus
	nextID    int64
}

// NewGitHub returns a fake GitHub holding repository repo ("owner/name") and no token.
func NewGitHub(repo string) *GitHub {
	return &GitHub{repo: repo, repoID: 1296269, tokens: map[string]GitHubAccount{}, nextID: 1000}
}

// Start serves the fake on a loopback server until the test ends, and fails the test for
// any request it did not expect. The server's URL is the API base URL.
func (f *GitHub) Start(t testing.TB) *httptest.Server {
	t.Helper()
	srv := start(t, f, &f.log, "GitHub")
	f.mu.Lock()
	f.base = srv.URL
	f.mu.Unlock()
	return srv
}

// AddToken makes token stand for acct.
func (f *GitHub) AddToken(token string, acct GitHubAccount) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = acct
}

// AddComment puts a comment by author on pull request number, as if posted earlier, and
// returns its id.
func (f *GitHub) AddComment(number int, author GitHubAccount, body string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.comments = append(f.comments, &GitHubComment{ID: f.nextID, Body: body, User: author.user(), Number: number})
	return f.nextID
}

// Comments returns the comments of pull request number, oldest first.
func (f *GitHub) Comments(number int) []GitHubComment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []GitHubComment
	for _, c := range f.comments {
		if c.Number == number {
			out = append(out, *c)
		}
	}
	return out
}

// CheckRuns returns the check runs created so far.
func (f *GitHub) CheckRuns() []CheckRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]CheckRun, len(f.checkRuns))
	for i, c := range f.checkRuns {
		out[i] = *c
		out[i].Annotations = append([]Annotation(nil), c.Annotations...)
	}
	return out
}

// Statuses returns the commit statuses set so far.
func (f *GitHub) Statuses() []GitHubStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]GitHubStatus(nil), f.statuses...)
}

// ServeHTTP answers one API call.
func (f *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.serve(w, r, f.route)
}

func (f *GitHub) route(w http.ResponseWriter, r *http.Request, body []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		token, _ = strings.CutPrefix(auth, "token ")
	}
	acct, known := f.tokens[token]
	if !known {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		return true
	}
	path := r.URL.EscapedPath()
	repoPrefix := "/repos/" + f.repo
	idPrefix := "/repositories/" + strconv.FormatInt(f.repoID, 10)
	var rest string
	switch {
	case path == "/user" && r.Method == http.MethodGet:
		if acct.Installation {
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "Resource not accessible by integration"})
			return true
		}
		writeJSON(w, http.StatusOK, acct.user())
		return true
	case strings.HasPrefix(path, repoPrefix+"/"):
		rest = strings.TrimPrefix(path, repoPrefix)
	case strings.HasPrefix(path, idPrefix+"/") && r.Method == http.MethodGet:
		rest = strings.TrimPrefix(path, idPrefix)
	default:
		return false
	}
	return f.routeRepo(w, r, acct, strings.Split(strings.TrimPrefix(rest, "/"), "/"), body)
}

// routeRepo answers a call below the repository: comments, check runs, statuses.
func (f *GitHub) routeRepo(w http.ResponseWriter, r *http.Request, acct GitHubAccount, parts []string, body []byte) bool {
	switch {
	case len(parts) == 3 && parts[0] == "issues" && parts[2] == "comments":
		number, err := strconv.Atoi(parts[1])
		if err != nil {
			return false
		}
		switch r.Method {
		case http.MethodGet:
			f.listComments(w, r, number)
		case http.MethodPost:
			f.createComment(w, acct, number, body)
		default:
			return false
		}
		return true
	case len(parts) == 3 && parts[0] == "issues" && parts[1] == "comments" && r.Method == http.MethodPatch:
		id, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return false
		}
		f.updateComment(w, acct, id, body)
		return true
	case len(parts) == 1 && parts[0] == "check-runs" && r.Method == http.MethodPost:
		f.createCheckRun(w, acct, body)
		return true
	case len(parts) == 2 && parts[0] == "check-runs" && r.Method == http.MethodPatch:
		id, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			return false
		}
		f.updateCheckRun(w, acct, id, body)
		return true
	case len(parts) == 2 && parts[0] == "statuses" && r.Method == http.MethodPost:
		f.createStatus(w, acct, parts[1], body)
		return true
	}
	return false
}

// listComments answers a page of comments with GitHub's Link header, whose URLs, as
// GitHub's do, name the repository by id.
func (f *GitHub) listComments(w http.ResponseWriter, r *http.Request, number int) {
	q := r.URL.Query()
	per := 30
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		per = min(v, 100)
	}
	page := 1
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	var all []GitHubComment
	for _, c := range f.comments {
		if c.Number == number {
			all = append(all, *c)
		}
	}
	last := max(1, (len(all)+per-1)/per)
	lo, hi := min((page-1)*per, len(all)), min(page*per, len(all))
	link := func(p int, rel string) string {
		return fmt.Sprintf(`<%s/repositories/%d/issues/%d/comments?per_page=%d&page=%d>; rel="%s"`, f.base, f.repoID, number, per, p, rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(page-1, "prev"), link(1, "first"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	out := all[lo:hi]
	if out == nil {
		out = []GitHubComment{}
	}
	writeJSON(w, http.StatusOK, out)
}

func forbidden(w http.ResponseWriter, acct GitHubAccount, userMessage string) {
	if acct.Installation {
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "Resource not accessible by integration"})
		return
	}
	writeJSON(w, http.StatusForbidden, map[string]string{"message": userMessage})
}

func unprocessable(w http.ResponseWriter, format string, args ...any) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed: " + fmt.Sprintf(format, args...)})
}

func commentBody(w http.ResponseWriter, body []byte) (string, bool) {
	var in struct {
		Body *string `json:"body"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Body == nil {
		unprocessable(w, "body is missing")
		return "", false
	}
	if utf8.RuneCountInString(*in.Body) > 65536 {
		unprocessable(w, "body is too long (maximum is 65536 characters)")
		return "", false
	}
	return *in.Body, true
}

func (f *GitHub) createComment(w http.ResponseWriter, acct GitHubAccount, number int, body []byte) {
	if acct.Installation && !acct.PullRequests {
		forbidden(w, acct, "")
		return
	}
	text, ok := commentBody(w, body)
	if !ok {
		return
	}
	f.nextID++
	c := &GitHubComment{ID: f.nextID, Body: text, User: acct.user(), Number: number}
	f.comments = append(f.comments, c)
	writeJSON(w, http.StatusCreated, c)
}

// updateComment edits a comment: its author may, and an admin may edit anyone's.
func (f *GitHub) updateComment(w http.ResponseWriter, acct GitHubAccount, id int64, body []byte) {
	for _, c := range f.comments {
		if c.ID != id {
			continue
		}
		if acct.Installation && !acct.PullRequests {
			forbidden(w, acct, "")
			return
		}
		if c.User.ID != acct.ID && !acct.Admin {
			forbidden(w, acct, "Must have admin rights to Repository.")
			return
		}
		text, ok := commentBody(w, body)
		if !ok {
			return
		}
		c.Body = text
		writeJSON(w, http.StatusOK, c)
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
}

type checkRunOutput struct {
	Title       *string      `json:"title"`
	Summary     *string      `json:"summary"`
	Annotations []Annotation `json:"annotations"`
}

// checkOutput validates a check run's output as GitHub does and returns why it is not
// accepted, or "".
func checkOutput(out *checkRunOutput) string {
	if out == nil {
		return ""
	}
	if out.Title == nil || out.Summary == nil {
		return "output requires title and summary"
	}
	if utf8.RuneCountInString(*out.Summary) > 65535 {
		return "output.summary is too long (maximum is 65535 characters)"
	}
	if len(out.Annotations) > 50 {
		return fmt.Sprintf("%d annotations: at most 50 per request", len(out.Annotations))
	}
	for i, a := range out.Annotations {
		switch {
		case a.Path == "" || a.StartLine < 1 || a.EndLine < 1 || a.Message == "":
			return fmt.Sprintf("annotations[%d]: path, start_line, end_line and message are required", i)
		case a.EndLine < a.StartLine:
			return fmt.Sprintf("annotations[%d]: end_line before start_line", i)
		case a.AnnotationLevel != "notice" && a.AnnotationLevel != "warning" && a.AnnotationLevel != "failure":
			return fmt.Sprintf("annotations[%d]: annotation_level %q is not notice, warning or failure", i, a.AnnotationLevel)
		case (a.StartColumn != 0 || a.EndColumn != 0) && a.StartLine != a.EndLine:
			return fmt.Sprintf("annotations[%d]: columns are only allowed on one line", i)
		}
	}
	return ""
}

func (f *GitHub) createCheckRun(w http.ResponseWriter, acct GitHubAccount, body []byte) {
	if !acct.Installation {
		forbidden(w, acct, "You must authenticate via a GitHub App.")
		return
	}
	if !acct.Checks {
		forbidden(w, acct, "")
		return
	}
	var in struct {
		Name       string          `json:"name"`
		HeadSHA    string          `json:"head_sha"`
		Status     string          `json:"status"`
		Conclusion string          `json:"conclusion"`
		DetailsURL string          `json:"details_url"`
		Output     *checkRunOutput `json:"output"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"})
		return
	}
	switch {
	case in.Name == "":
		unprocessable(w, "name is missing")
		return
	case !sha1RE.MatchString(in.HeadSHA):
		unprocessable(w, "No commit found for SHA: %s", in.HeadSHA)
		return
	case in.Status == "completed" && in.Conclusion != "success" && in.Conclusion != "neutral" && in.Conclusion != "failure" &&
		in.Conclusion != "cancelled" && in.Conclusion != "skipped" && in.Conclusion != "timed_out" && in.Conclusion != "action_required":
		unprocessable(w, "conclusion %q is not valid for a completed run", in.Conclusion)
		return
	}
	if msg := checkOutput(in.Output); msg != "" {
		unprocessable(w, "%s", msg)
		return
	}
	f.nextID++
	run := &CheckRun{ID: f.nextID, Name: in.Name, HeadSHA: in.HeadSHA, Status: in.Status, Conclusion: in.Conclusion, DetailsURL: in.DetailsURL, By: acct.Login}
	if in.Output != nil {
		run.Title, run.Summary, run.Annotations = *in.Output.Title, *in.Output.Summary, in.Output.Annotations
	}
	f.checkRuns = append(f.checkRuns, run)
	writeJSON(w, http.StatusCreated, map[string]any{"id": run.ID, "name": run.Name, "head_sha": run.HeadSHA, "conclusion": run.Conclusion})
}

// updateCheckRun replaces the output's title and summary and adds its annotations, as
// GitHub does.
func (f *GitHub) updateCheckRun(w http.ResponseWriter, acct GitHubAccount, id int64, body []byte) {
	if !acct.Installation || !acct.Checks {
		forbidden(w, acct, "You must authenticate via a GitHub App.")
		return
	}
	var in struct {
		Output *checkRunOutput `json:"output"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"})
		return
	}
	if msg := checkOutput(in.Output); msg != "" {
		unprocessable(w, "%s", msg)
		return
	}
	for _, run := range f.checkRuns {
		if run.ID == id {
			if in.Output != nil {
				run.Title, run.Summary = *in.Output.Title, *in.Output.Summary
				run.Annotations = append(run.Annotations, in.Output.Annotations...)
			}
			writeJSON(w, http.StatusOK, map[string]any{"id": run.ID})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
}

func (f *GitHub) createStatus(w http.ResponseWriter, acct GitHubAccount, sha string, body []byte) {
	if acct.Installation && !acct.Statuses {
		forbidden(w, acct, "")
		return
	}
	var st GitHubStatus
	if err := json.Unmarshal(body, &st); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Problems parsing JSON"})
		return
	}
	switch {
	case !sha1RE.MatchString(sha):
		unprocessable(w, "No commit found for SHA: %s", sha)
		return
	case st.State != "error" && st.State != "failure" && st.State != "pending" && st.State != "success":
		unprocessable(w, "state %q is not included in the list", st.State)
		return
	case utf8.RuneCountInString(st.Description) > 140:
		unprocessable(w, "description is too long (maximum is 140 characters)")
		return
	}
	if st.Context == "" {
		st.Context = "default"
	}
	st.SHA, st.By = sha, acct.Login
	f.statuses = append(f.statuses, st)
	writeJSON(w, http.StatusCreated, st)
}
