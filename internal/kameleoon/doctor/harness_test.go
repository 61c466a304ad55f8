package kdoctor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
)

// testSite is the vendor tutorial's site code.
const testSite = "pzllysfw2f"

// harness is a sandbox on a loopback server, optionally behind a middleware that breaks
// or decorates the API, and a count of every request that reached the server.
type harness struct {
	t        *testing.T
	sb       *ksandbox.Server
	url      string
	requests atomic.Int64
}

// middleware wraps the sandbox; next is the sandbox itself.
type middleware func(next http.Handler) http.Handler

func newHarness(t *testing.T, opts ksandbox.Options, mw middleware) *harness {
	t.Helper()
	if opts.Sites == nil {
		opts.Sites = []string{testSite}
	}
	sb, err := ksandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, sb: sb}
	var handler http.Handler = sb
	if mw != nil {
		handler = mw(sb)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	h.url = ts.URL
	return h
}

// seed stores a flag other than the scratch flag, so that paging can be probed.
func (h *harness) seed() {
	h.t.Helper()
	if err := h.sb.SetFlagJSON(testSite, []byte(`{"featureKey": "existing_flag", "name": "Existing flag"}`)); err != nil {
		h.t.Fatal(err)
	}
}

// options are the doctor's options against the harness, with fast retries.
func (h *harness) options() Options {
	return Options{
		API: kclient.Config{
			BaseURL: h.url, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret,
			BackoffBase: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
		},
		SiteCode: testSite,
	}
}

func (h *harness) run(ctx context.Context, opts Options) *Report {
	h.t.Helper()
	d, err := New(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	return d.Run(ctx)
}

// scratch returns the scratch flag as the sandbox stores it.
func (h *harness) scratch(key string) map[string]any {
	h.t.Helper()
	raw, ok := h.sb.FlagJSON(testSite, key)
	if !ok {
		h.t.Fatalf("the sandbox has no flag %s", key)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		h.t.Fatal(err)
	}
	return m
}

// assertArchived checks, on the sandbox's own state, that the scratch flag is archived,
// and that the report says so.
func (h *harness) assertArchived(rep *Report) {
	h.t.Helper()
	if !strings.HasPrefix(rep.ScratchFlag, ScratchPrefix) {
		h.t.Fatalf("scratch flag %q does not start with %s", rep.ScratchFlag, ScratchPrefix)
	}
	f := h.scratch(rep.ScratchFlag)
	if f["archived"] != true {
		h.t.Errorf("scratch flag %s is not archived in the sandbox: archived = %v", rep.ScratchFlag, f["archived"])
	}
	if !rep.Archived {
		h.t.Error("the report says the scratch flag is not archived")
	}
	tags, _ := f["tags"].([]any)
	if len(tags) != 1 || tags[0] != ownershipTag {
		h.t.Errorf("scratch flag tags = %v, want [%s]", tags, ownershipTag)
	}
}

// assertCalls checks the report's call count against the sandbox's call log (every call
// that reached the sandbox) and the server's count (every call that reached the server,
// middleware answers included), and the budget.
func (h *harness) assertCalls(rep *Report) {
	h.t.Helper()
	logged := len(h.sb.Calls())
	reached := int(h.requests.Load())
	if rep.CallsUsed != reached {
		h.t.Errorf("report says %d calls; %d reached the server (%d the sandbox)", rep.CallsUsed, reached, logged)
	}
	if reached > MaxCalls || rep.CallsBudget != MaxCalls && rep.CallsBudget > MaxCalls {
		h.t.Errorf("%d calls reached the server; the budget is %d", reached, MaxCalls)
	}
}

// rowsByID indexes a report's rows.
func rowsByID(rep *Report) map[string]Row {
	m := map[string]Row{}
	for _, r := range rep.Rows {
		m[r.ID] = r
	}
	return m
}

// describe renders a report for a failure message.
func describe(rep *Report) string {
	var b bytes.Buffer
	_ = rep.WriteText(&b)
	return b.String()
}

// rewriteBody lets a middleware change a request body before the sandbox reads it.
func rewriteBody(r *http.Request, change func([]byte) []byte) {
	body, _ := io.ReadAll(r.Body)
	_ = r.Body.Close()
	body = change(body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
}

// isEnvPatch reports whether r is an environment PATCH (4 path segments).
func isEnvPatch(r *http.Request) bool {
	return r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/feature-flags/"+testSite+"/") &&
		strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 3
}

// editRules applies edit to every rule of an environment PATCH body.
func editRules(body []byte, edit func(rule map[string]any)) []byte {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	rules, _ := m["rolloutRules"].([]any)
	for _, r := range rules {
		if o, ok := r.(map[string]any); ok {
			edit(o)
		}
	}
	out, _ := json.Marshal(m)
	return out
}

func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
