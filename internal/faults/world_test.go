package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/kameleoon"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/logtest"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Site codes of the generated repositories: most flags on siteA (flagsync.yaml's
// default), every fifth on siteB.
const (
	siteA = "faultsitea"
	siteB = "faultsiteb"
)

// Canary secrets: each is given to flagsync where the real secret would go, and the
// tests check it never shows anywhere.
const (
	clientID            = "faults-client"
	canaryClientSecret  = "canary-client-secret-Q7v2Lm9xK4"
	canaryGitPassword   = "canary-git-password-Hs4Kd8PwR1"
	canaryWebhookSecret = "canary-webhook-secret-Ty6Rb3NcE5"
	canaryAdminToken    = "canary-admin-token-Jf2Wq5ZuD8"
	gitUser             = "flagsync-faults"
)

// Client settings of the suite: tiny backoffs so that retries cost milliseconds.
const (
	testBackoff     = time.Millisecond
	testBackoffMax  = 20 * time.Millisecond
	testMaxAttempts = 4
)

// debugLogger logs at debug level to buf twice, as JSON and as text, so that a secret
// that only one handler's formatting would reveal is caught too.
func debugLogger(buf *logtest.Buffer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	return slog.New(slog.NewMultiHandler(slog.NewJSONHandler(buf, opts), slog.NewTextHandler(buf, opts)))
}

// world is one sandbox API on a loopback server, behind a front that sees every request
// (hooks, in-flight count, the access tokens it issues), with the canary credentials and
// a debug log that every client and sync of the test writes to.
type world struct {
	t     *testing.T
	sb    *ksandbox.Server
	front *front
	url   string
	logs  *logtest.Buffer
	log   *slog.Logger
}

// forEachReading runs test once per reading of what Kameleoon's docs leave open
// (sandbox.Readings: the default, each strict variant, all of them), as subtests named
// after the reading; test starts its world with sandbox.Options{Strict: r.Strict}.
func forEachReading(t *testing.T, test func(t *testing.T, r ksandbox.Reading)) {
	for _, r := range ksandbox.Readings() {
		t.Run(r.Name, func(t *testing.T) { test(t, r) })
	}
}

// readingTag marks a scenario's summary line with the reading it ran against ("" for the
// default).
func readingTag(r ksandbox.Reading) string {
	if len(r.Strict) == 0 {
		return ""
	}
	return " [" + r.Name + "]"
}

func newWorld(t *testing.T, opts ksandbox.Options) *world {
	t.Helper()
	w := &world{t: t, logs: &logtest.Buffer{}}
	w.log = debugLogger(w.logs)
	opts.ClientID, opts.ClientSecret = clientID, canaryClientSecret
	if opts.RatePer10s == 0 {
		opts.RatePer10s, opts.RatePerHour = -1, -1
	}
	if len(opts.Environments) == 0 {
		opts.Environments = []string{"development", "staging", "production"}
	}
	opts.Logger = w.log
	sb, err := ksandbox.New(opts)
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	w.sb = sb
	w.front = &front{next: sb, conns: map[net.Conn]connState{}}
	ts := httptest.NewUnstartedServer(w.front)
	ts.Config.ConnState = w.front.connState
	ts.Start()
	t.Cleanup(ts.Close)
	w.url = ts.URL
	t.Cleanup(func() {
		w.assertNoSecrets("the debug logs", w.logs.String())
		if t.Failed() {
			t.Logf("debug logs (last 40 lines):\n%s", lastLines(w.logs.String(), 40))
		}
	})
	return w
}

// front wraps the sandbox: it runs hooks around each request, tracks the server's
// connections and keeps every access token the token endpoint hands out.
type front struct {
	next   http.Handler
	before atomic.Pointer[func(*http.Request)]
	after  atomic.Pointer[func(*http.Request)]
	dialed atomic.Int64 // connections the in-process clients opened

	mu       sync.Mutex
	tokens   []string
	conns    map[net.Conn]connState // open connections
	accepted int64
}

type connState struct {
	state http.ConnState
	since time.Time
}

func (f *front) connState(c net.Conn, st http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch st {
	case http.StateNew:
		f.accepted++
		f.conns[c] = connState{st, time.Now()}
	case http.StateClosed, http.StateHijacked:
		delete(f.conns, c)
	default:
		f.conns[c] = connState{st, time.Now()}
	}
}

// newConnGrace is how long a new connection may stay silent before it counts as one
// that will never carry a request (the transport dials for requests that a kill then
// cancels, and keeps such connections). A request's bytes, when there are any, are read
// at once, which makes the connection active.
const newConnGrace = 100 * time.Millisecond

// busy reports whether the server may still receive or handle a request already sent:
// a connection an in-process client opened is not accepted yet, a new one may still
// carry a request, or one is reading or handling a request.
func (f *front) busy() (bool, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.accepted < f.dialed.Load() {
		return true, f.accepted
	}
	for _, c := range f.conns {
		if c.state == http.StateActive || (c.state == http.StateNew && time.Since(c.since) < newConnGrace) {
			return true, f.accepted
		}
	}
	return false, f.accepted
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := f.before.Load(); h != nil {
		(*h)(r)
	}
	if r.URL.Path == "/oauth/token" {
		tw := &teeWriter{ResponseWriter: w}
		f.next.ServeHTTP(tw, r)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(tw.body.Bytes(), &tok) == nil && tok.AccessToken != "" {
			f.mu.Lock()
			f.tokens = append(f.tokens, tok.AccessToken)
			f.mu.Unlock()
		}
	} else {
		f.next.ServeHTTP(w, r)
	}
	if h := f.after.Load(); h != nil {
		(*h)(r)
	}
}

// setBefore installs a hook that sees each request before the sandbox; nil removes it.
func (f *front) setBefore(h func(*http.Request)) { storeHook(&f.before, h) }

// setAfter installs a hook that runs after the sandbox answered a request (the answer
// may still sit in the server's buffer); nil removes it.
func (f *front) setAfter(h func(*http.Request)) { storeHook(&f.after, h) }

func storeHook(p *atomic.Pointer[func(*http.Request)], h func(*http.Request)) {
	if h == nil {
		p.Store(nil)
		return
	}
	p.Store(&h)
}

// issued returns every access token handed out so far.
func (f *front) issued() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tokens...)
}

// waitIdle waits until the server has received and answered every request sent to it,
// so that a request a killed client left on the wire cannot land during the next run.
// The connections of the dead processes are closed as they become idle. A dead
// process's connections that the kernel holds but the server has not accepted yet are
// not counted; the quiet period covers those.
func (f *front) waitIdle(t *testing.T, dead ...*proc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	quiet := 0
	var last int64 = -1
	for quiet < 3 {
		for _, p := range dead {
			p.exit() // a connection dialled for a cancelled request may join the pool late
		}
		busy, accepted := f.busy()
		if busy || accepted != last {
			quiet = 0
		} else {
			quiet++
		}
		last = accepted
		if time.Now().After(deadline) {
			f.mu.Lock()
			states := fmt.Sprint(f.conns)
			f.mu.Unlock()
			t.Fatalf("the sandbox still receives requests 10s after the client stopped (busy %t, %d connections accepted, %d dialled: %s)", busy, accepted, f.dialed.Load(), states)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// teeWriter keeps a copy of the response body; it still lets the sandbox drop the
// connection.
type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.body.Write(p)
	return w.ResponseWriter.Write(p)
}

func (w *teeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// secrets returns every secret of the world: the canaries and the tokens issued.
func (w *world) secrets() []string {
	return append([]string{canaryClientSecret, canaryGitPassword, canaryWebhookSecret, canaryAdminToken}, w.front.issued()...)
}

// assertNoSecrets fails the test when text holds any secret of the world.
func (w *world) assertNoSecrets(where, text string) {
	w.t.Helper()
	assertNoSecrets(w.t, where, text, w.secrets())
}

func assertNoSecrets(t *testing.T, where, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("a secret (%s…) shows in %s", s[:min(len(s), 10)], where)
		}
	}
}

// proc is one flagsync process: an API client with its own token and budget.
type proc struct {
	client  *kclient.Client
	calls   atomic.Int64
	retries atomic.Int64
	http    *http.Client
}

// exit closes the process's idle connections, as the end of a process would: a
// connection it opened but never sent on would otherwise look busy to the server.
func (p *proc) exit() { p.http.CloseIdleConnections() }

type procOptions struct {
	budget      *api.Budget
	backoff     time.Duration                             // default testBackoff
	backoffMax  time.Duration                             // default testBackoffMax
	attempts    int                                       // default testMaxAttempts
	callTimeout time.Duration                             // default 5s
	transport   func(http.RoundTripper) http.RoundTripper // wraps the client's transport
}

// proc starts a new "process": a fresh client of the world's sandbox.
func (w *world) proc(o procOptions) *proc {
	w.t.Helper()
	p := &proc{}
	if o.budget == nil {
		o.budget = api.NewBudgetWindows(api.Window{Limit: 1_000_000, Period: 10 * time.Second})
	}
	if o.backoff == 0 {
		o.backoff = testBackoff
	}
	if o.backoffMax == 0 {
		o.backoffMax = testBackoffMax
	}
	if o.attempts == 0 {
		o.attempts = testMaxAttempts
	}
	if o.callTimeout == 0 {
		o.callTimeout = 5 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			w.front.dialed.Add(1)
		}
		return c, err
	}
	var rt http.RoundTripper = tr
	if o.transport != nil {
		rt = o.transport(rt)
	}
	p.http = &http.Client{Transport: rt}
	c, err := kclient.New(kclient.Config{
		BaseURL: w.url, ClientID: clientID, ClientSecret: canaryClientSecret,
		HTTPClient: p.http, Logger: w.log, Budget: o.budget, CallTimeout: o.callTimeout,
		BackoffBase: o.backoff, BackoffMax: o.backoffMax, MaxAttempts: o.attempts, MaxElapsed: 20 * time.Second,
		Observer: func(ci api.CallInfo) {
			p.calls.Add(1)
			if ci.Attempt > 1 {
				p.retries.Add(1)
			}
		},
	})
	if err != nil {
		w.t.Fatalf("new API client: %v", err)
	}
	p.client = c
	return p
}

// run is one sync of files (a repository: paths → content) at revision rev by p.
func (w *world) run(ctx context.Context, p *proc, files map[string]string, rev string, mod ...func(*reconcile.Input)) (*reconcile.Report, error) {
	return w.runFS(ctx, p, mapFS(files), rev, mod...)
}

// runFS is run on a repository given as a file system (a Git snapshot).
func (w *world) runFS(ctx context.Context, p *proc, fsys fs.FS, rev string, mod ...func(*reconcile.Input)) (*reconcile.Report, error) {
	in := reconcile.Input{
		Revision: rev, FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{kameleoon.Vendor(p.client)},
		Concurrency: 4, MaxChanges: 0, Calls: p.calls.Load, Logger: w.log,
	}
	for _, m := range mod {
		m(&in)
	}
	rep, err := reconcile.Run(ctx, in)
	if err != nil {
		w.assertNoSecrets("a sync error", err.Error())
	}
	if rep != nil {
		for _, r := range rep.Results {
			if r.Err != nil {
				w.assertNoSecrets("a change's error", r.Err.Error())
			}
		}
	}
	return rep, err
}

// mustApply runs a sync that must succeed and converge despite the faults injected.
func (w *world) mustApply(p *proc, files map[string]string, rev string, mod ...func(*reconcile.Input)) *reconcile.Report {
	w.t.Helper()
	return w.mustApplyFS(p, mapFS(files), rev, mod...)
}

// mustApplyFS is mustApply on a repository given as a file system.
func (w *world) mustApplyFS(p *proc, fsys fs.FS, rev string, mod ...func(*reconcile.Input)) *reconcile.Report {
	w.t.Helper()
	rep, err := w.runFS(testContext(w.t), p, fsys, rev, mod...)
	if err != nil {
		w.t.Fatalf("sync %s: %v", rev, err)
	}
	if rep.Summary.Failed > 0 || !rep.Converged {
		w.t.Fatalf("sync %s: %s, converged %t; failures:\n%s", rev, rep.Summary, rep.Converged, failures(rep))
	}
	if n := len(rep.Results); n != len(rep.Plan.Changes) || rep.Summary.Applied != n {
		w.t.Fatalf("sync %s: %d changes planned, %d results, %s: a change was lost", rev, len(rep.Plan.Changes), n, rep.Summary)
	}
	return rep
}

// settle checks how a scenario ends, with the faults gone: an invalid revision of the
// same repository sends nothing at all, a new process converges, and a further run
// sends no write. It returns how many writes the converging run sent.
func (w *world) settle(files map[string]string, rev string) int {
	w.t.Helper()
	w.front.waitIdle(w.t)
	calls0 := len(w.sb.Calls())
	rep, err := w.run(testContext(w.t), w.proc(procOptions{}), invalidFiles(files), rev+"-invalid")
	var invalid *diag.InvalidError
	if !errors.As(err, &invalid) || len(rep.Diagnostics) == 0 {
		w.t.Errorf("an invalid revision: err = %v, want the diagnostics", err)
	}
	if calls := w.sb.Calls()[calls0:]; len(calls) != 0 {
		w.t.Errorf("an invalid revision made %d API calls, want 0: %v %s %d", len(calls), calls[0].Method, calls[0].Path, calls[0].Status)
	}

	writes0 := w.sb.Writes()
	w.mustApply(w.proc(procOptions{}), files, rev)
	converging := w.sb.Writes() - writes0
	w.assertQuiet(files, rev)
	if d := w.duplicates(); len(d) > 0 {
		w.t.Errorf("flags created more than once: %v", d)
	}
	return converging
}

// assertQuiet runs one more sync, which must plan nothing and send no write.
func (w *world) assertQuiet(files map[string]string, rev string) {
	w.t.Helper()
	writes0 := w.sb.Writes()
	rep, err := w.run(testContext(w.t), w.proc(procOptions{}), files, rev)
	if err != nil {
		w.t.Fatalf("further sync: %v", err)
	}
	if n := w.sb.Writes() - writes0; n != 0 || len(rep.Plan.Changes) != 0 {
		w.t.Errorf("further sync: %d changes planned, %d writes sent; want none", len(rep.Plan.Changes), n)
	}
}

// created counts the successful creates (201) per site/featureKey in the call log, and
// the creates the API refused because the flag existed (409).
func (w *world) created() (perKey map[string]int, conflicts int) {
	perKey = map[string]int{}
	for _, c := range w.sb.Calls() {
		if c.Method != http.MethodPost || c.Path != "/feature-flags" {
			continue
		}
		switch c.Status {
		case http.StatusCreated:
			perKey[createKey(w.t, c.Body)]++
		case http.StatusConflict:
			conflicts++
		}
	}
	return perKey, conflicts
}

// duplicates lists the flags created more than once.
func (w *world) duplicates() []string {
	perKey, _ := w.created()
	var out []string
	for k, n := range perKey {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s×%d", k, n))
		}
	}
	sort.Strings(out)
	return out
}

func createKey(t *testing.T, body []byte) string {
	var id struct{ SiteCode, FeatureKey string }
	if err := json.Unmarshal(body, &id); err != nil {
		t.Fatalf("create body: %v", err)
	}
	return id.SiteCode + "/" + id.FeatureKey
}

// statuses counts the call log's answers by status (0: the connection was dropped).
func (w *world) statuses() map[int]int {
	out := map[int]int{}
	for _, c := range w.sb.Calls() {
		out[c.Status]++
	}
	return out
}

// tokenCalls counts the token requests in the call log.
func (w *world) tokenCalls() int {
	n := 0
	for _, c := range w.sb.Calls() {
		if c.Path == "/oauth/token" {
			n++
		}
	}
	return n
}

// stats is the summary line's tail for a scenario: calls the sandbox saw, retries the
// clients made (attempts after the first, creates re-sent), duplicates.
func (w *world) stats(procs ...*proc) string {
	calls := w.sb.Calls()
	var retries int64
	for _, p := range procs {
		retries += p.retries.Load()
	}
	posted := map[string]int{}
	for _, c := range calls {
		if c.Method == http.MethodPost && c.Path == "/feature-flags" {
			posted[createKey(w.t, c.Body)]++
		}
	}
	for _, n := range posted {
		retries += int64(n - 1)
	}
	return fmt.Sprintf("%d calls, %d retries", len(calls), retries)
}

func failures(rep *reconcile.Report) string {
	var b strings.Builder
	for _, r := range rep.Results {
		if r.Status == apply.Failed {
			fmt.Fprintf(&b, "  %v\n", r.Err)
		}
	}
	return b.String()
}

// failedErrors returns the errors of the failed changes.
func failedErrors(rep *reconcile.Report) []string {
	var out []string
	for _, r := range rep.Results {
		if r.Status == apply.Failed {
			out = append(out, r.Err.Error())
		}
	}
	return out
}

// assertErrorNames fails unless text holds every one of want (what failed: the status,
// the method and endpoint, the remote…).
func assertErrorNames(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(text, s) {
			t.Errorf("%s does not say %q:\n%s", what, s, text)
		}
	}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// --- repositories ------------------------------------------------------------------

// genFlag is one generated flag; the fields are what the tests edit. Its production
// environment has two rules, one with a release window written as a local time in its
// timeZone (as the vendor tutorial writes it).
type genFlag struct {
	key        string
	site       string // "" for the default site
	exposition int    // of the production rule
	stagingOn  bool
}

func genFlags(n int) []genFlag {
	flags := make([]genFlag, n)
	for i := range flags {
		flags[i] = genFlag{key: fmt.Sprintf("flag_%04d", i), exposition: 10 + i%80, stagingOn: i%2 == 0}
		if i%5 == 4 {
			flags[i].site = siteB
		}
	}
	return flags
}

// edited returns flags with every production exposition and staging switch changed:
// two environment patches per flag.
func edited(flags []genFlag) []genFlag {
	out := append([]genFlag(nil), flags...)
	for i := range out {
		out[i].exposition++
		out[i].stagingOn = !out[i].stagingOn
	}
	return out
}

func (g genFlag) yaml() string {
	var b strings.Builder
	if g.site != "" {
		fmt.Fprintf(&b, "siteCode: %s\n", g.site)
	}
	fmt.Fprintf(&b, `featureKey: %s
name: Generated %s
description: A generated flag with three environments and rules.
tags: [generated]
variables:
  - {key: color, type: STRING, value: blue}
variations:
  - {key: "off", name: Off}
  - key: "on"
    name: On
    variables: [{key: color, value: green}]
environments:
  development:
    featureEnabled: true
    defaultVariationKey: "on"
  staging:
    featureEnabled: %t
    defaultVariationKey: "on"
  production:
    featureEnabled: true
    defaultVariationKey: "off"
    rolloutRules:
      - name: beta testers
        type: TARGETED_DELIVERY
        segmentId: 403694
        exposition: %d
        variationKey: "on"
        state: ACTIVE
      - name: gradual
        type: PROGRESSIVE_DELIVERY
        exposition: 5
        variationKey: "on"
        state: PAUSED
        release: {releaseFrom: "2030-01-10T11:58:01", releaseTo: "2030-07-10T11:58:01", timeZone: Europe/Paris}
`, g.key, g.key, g.stagingOn, g.exposition)
	return b.String()
}

// repoFiles is the repository of flags: flags/flagsync.yaml and one file per flag.
func repoFiles(flags []genFlag) map[string]string {
	files := map[string]string{
		"flags/flagsync.yaml": "siteCode: " + siteA + "\nenvironments: [development, staging, production]\n",
	}
	for _, f := range flags {
		files["flags/"+f.key+".yaml"] = f.yaml()
	}
	return files
}

// brokenFlag is a flag file with several problems; any repository holding it is invalid.
const brokenFlag = "featureKey: Not A Valid Key\nname: broken\nvariations: []\nenvironments:\n  production:\n    defaultVariationKey: missing\n"

// invalidFiles returns files plus one broken flag file.
func invalidFiles(files map[string]string) map[string]string {
	out := make(map[string]string, len(files)+1)
	for k, v := range files {
		out[k] = v
	}
	out["flags/zz_broken.yaml"] = brokenFlag
	return out
}

func mapFS(files map[string]string) fs.FS {
	m := fstest.MapFS{}
	for k, v := range files {
		m[k] = &fstest.MapFile{Data: []byte(v), Mode: 0o644}
	}
	return m
}

// writeDir writes files into dir (for the binary, which reads a folder).
func writeDir(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := dir + "/" + name
		if err := os.MkdirAll(p[:strings.LastIndex(p, "/")], 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
