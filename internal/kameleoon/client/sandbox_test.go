package kclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/logtest"
)

// These tests run the client against the sandbox and read what happened from the
// sandbox's call log.

// sandboxClient starts a sandbox with opts and returns it with a client for it.
func sandboxClient(t *testing.T, opts ksandbox.Options, adjust func(*Config)) (*ksandbox.Server, *Client) {
	t.Helper()
	if len(opts.Sites) == 0 {
		opts.Sites = []string{tutorialSite}
	}
	srv, ts := ksandboxtest.NewTestServer(t, opts)
	cfg := testConfig(ts.URL, nil)
	cfg.ClientID, cfg.ClientSecret = ksandbox.DefaultClientID, ksandbox.DefaultClientSecret
	if opts.ClientID != "" {
		cfg.ClientID, cfg.ClientSecret = opts.ClientID, opts.ClientSecret
	}
	if adjust != nil {
		adjust(&cfg)
	}
	return srv, newTestClient(t, cfg)
}

// callLine renders a logged call as "METHOD /path status".
func callLine(c ksandbox.Call) string { return fmt.Sprintf("%s %s %d", c.Method, c.Path, c.Status) }

func callLines(calls []ksandbox.Call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = callLine(c)
	}
	return out
}

func countCalls(calls []ksandbox.Call, method, path string) int {
	n := 0
	for _, c := range calls {
		if c.Method == method && c.Path == path {
			n++
		}
	}
	return n
}

// seedFlag stores a minimal valid flag in the sandbox.
func seedFlag(t *testing.T, srv *ksandbox.Server, key string) {
	t.Helper()
	if err := srv.SetFlagJSON(tutorialSite, []byte(`{"featureKey":"`+key+`","name":"`+key+`"}`)); err != nil {
		t.Fatal(err)
	}
}

func TestSandboxTokenRenewedBeforeExpiry(t *testing.T) {
	t0 := time.Date(2025, 12, 17, 10, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	srv, c := sandboxClient(t, ksandbox.Options{TokenTTL: time.Hour, Now: clock.Now}, func(cfg *Config) { cfg.Now = clock.Now })
	seedFlag(t, srv, "k")
	ctx := context.Background()
	for _, step := range []struct {
		at     time.Duration
		tokens int
	}{
		{0, 1},
		{58*time.Minute + 59*time.Second, 1}, // valid for another 61 s: kept
		{59*time.Minute + 1*time.Second, 2},  // 59 s left: renewed before the server would refuse it
		{60*time.Minute + 30*time.Second, 2}, // the old token has expired on the server: the new one is used
	} {
		clock.Set(t0.Add(step.at))
		if _, err := c.GetFlag(ctx, tutorialSite, "k"); err != nil {
			t.Fatal(err)
		}
		if n := countCalls(srv.Calls(), "POST", "/oauth/token"); n != step.tokens {
			t.Errorf("at +%v: %d token requests, want %d", step.at, n, step.tokens)
		}
	}
	for _, call := range srv.Calls() {
		if call.Status == http.StatusUnauthorized {
			t.Errorf("the server refused a token: %s", callLine(call))
		}
	}
}

func TestSandboxRevokedTokenOneReauthOneRetry(t *testing.T) {
	srv, c := sandboxClient(t, ksandbox.Options{}, nil)
	seedFlag(t, srv, "k")
	ctx := context.Background()
	if _, err := c.GetFlag(ctx, tutorialSite, "k"); err != nil {
		t.Fatal(err)
	}
	srv.ResetCalls()
	srv.RevokeTokens()
	if _, err := c.GetFlag(ctx, tutorialSite, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetFlag(ctx, tutorialSite, "k"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /feature-flags/pzllysfw2f/k 401",
		"POST /oauth/token 200",
		"GET /feature-flags/pzllysfw2f/k 200",
		"GET /feature-flags/pzllysfw2f/k 200",
	}
	if got := callLines(srv.Calls()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls after revoking the token:\n got %q\nwant %q", got, want)
	}
}

func TestSandboxPagingThousandFlags(t *testing.T) {
	const total = 1000
	srv, c := sandboxClient(t, ksandbox.Options{}, nil)
	for i := range total {
		seedFlag(t, srv, fmt.Sprintf("flag_%04d", i))
	}
	srv.ResetCalls()
	flags, err := c.ListFlags(context.Background(), tutorialSite)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range flags {
		seen[f.FeatureKey] = true
	}
	if len(flags) != total || len(seen) != total {
		t.Errorf("listed %d flags (%d distinct), want %d", len(flags), len(seen), total)
	}
	lists := countCalls(srv.Calls(), "GET", "/feature-flags")
	if want := (total + DefaultPerPage - 1) / DefaultPerPage; lists != want {
		t.Errorf("%d list calls for %d flags at %d per page, want %d", lists, total, DefaultPerPage, want)
	}
	t.Logf("%d flags listed with %d list calls", len(flags), lists)
}

// TestSandboxBudgetNeverExceeded: concurrent calls never put more calls in a window of
// the server's log than the budget allows: resource calls only by default (the token is
// not charged), and the token too with TokenCountsYes.
func TestSandboxBudgetNeverExceeded(t *testing.T) {
	for _, counts := range []TokenCounting{TokenCountsNo, TokenCountsYes} {
		t.Run(string(counts), func(t *testing.T) { testBudgetNeverExceeded(t, counts) })
	}
}

func testBudgetNeverExceeded(t *testing.T, counts TokenCounting) {
	const limit, period, callers = 10, 200 * time.Millisecond, 200
	budget := api.NewBudgetWindows(api.Window{Limit: limit, Period: period})
	// The sandbox's own limiter (50 per 10 s) is off: the test reads the windows from
	// the call log instead.
	srv, c := sandboxClient(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1}, func(cfg *Config) { cfg.Budget = budget; cfg.TokenCounts = counts })
	seedFlag(t, srv, "k")

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.GetFlag(context.Background(), tutorialSite, "k")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	calls := srv.Calls()
	if len(calls) != callers+1 {
		t.Errorf("%d calls logged, want %d (and one token request)", len(calls), callers+1)
	}
	var times []time.Time
	for _, call := range calls {
		if call.Path != "/oauth/token" || counts == TokenCountsYes {
			times = append(times, call.Time)
		}
		if call.Status != http.StatusOK {
			t.Errorf("call %s", callLine(call))
		}
	}

	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	busiest := 0
	for i := range times {
		n := 0
		for j := i; j < len(times) && !times[j].After(times[i].Add(period)); j++ {
			n++
		}
		busiest = max(busiest, n)
	}
	if busiest > limit {
		t.Errorf("the server saw %d calls within %v; the budget allows %d", busiest, period, limit)
	}
	t.Logf("%d calls, at most %d in any %v window (limit %d)", len(calls), busiest, period, limit)
}

func TestSandbox429ThenSuccessIsOneRetry(t *testing.T) {
	srv, c := sandboxClient(t, ksandbox.Options{}, nil)
	seedFlag(t, srv, "k")
	ctx := context.Background()
	if _, err := c.GetFlag(ctx, tutorialSite, "k"); err != nil { // token first, outside the fault
		t.Fatal(err)
	}
	srv.ResetCalls()
	srv.InjectFault(ksandbox.Fault{Method: "GET", PathPrefix: "/feature-flags/", Status: http.StatusTooManyRequests, RetryAfter: "1"})
	if _, err := c.GetFlag(ctx, tutorialSite, "k"); err != nil {
		t.Fatal(err)
	}
	calls := srv.Calls()
	want := []string{"GET /feature-flags/pzllysfw2f/k 429", "GET /feature-flags/pzllysfw2f/k 200"}
	if got := callLines(calls); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls:\n got %q\nwant %q", got, want)
	}
	// Retry-After is a lower bound the protocol sets; the retry must not come earlier.
	if gap := calls[1].Time.Sub(calls[0].Time); gap < time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 1", gap)
	}
}

func TestSandboxLostCreateResponse(t *testing.T) {
	tests := []struct {
		name      string
		fault     ksandbox.Fault
		wantPosts int
	}{
		{"connection dropped after the create", ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", AfterHandle: true, Drop: true}, 1},
		{"503 after the create", ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", AfterHandle: true, Status: 503}, 1},
		{"503 before the create", ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", Status: 503}, 2},
		{"connection dropped before the create", ksandbox.Fault{Method: "POST", PathPrefix: "/feature-flags", Drop: true}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logtest.Buffer{}
			srv, c := sandboxClient(t, ksandbox.Options{}, func(cfg *Config) { cfg.Logger = testConfig("", logs).Logger })
			srv.InjectFault(tt.fault)
			f := &kmodel.Flag{SiteCode: tutorialSite, FeatureKey: "new_checkout", Name: "New checkout", Variations: []kmodel.Variation{{Key: "off"}, {Key: "on"}}}
			got, err := c.CreateFlag(context.Background(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID == 0 || got.FeatureKey != "new_checkout" || len(got.Environments) != 3 {
				t.Errorf("CreateFlag returned %+v", got)
			}
			calls := srv.Calls()
			if n := countCalls(calls, "POST", "/feature-flags"); n != tt.wantPosts {
				t.Errorf("%d POSTs, want %d:\n%q", n, tt.wantPosts, callLines(calls))
			}
			if n := countCalls(calls, "GET", "/feature-flags/pzllysfw2f/new_checkout"); n != 1 {
				t.Errorf("%d GETs of the flag, want 1 (the check):\n%q", n, callLines(calls))
			}
			flags, err := c.ListFlags(context.Background(), tutorialSite)
			if err != nil {
				t.Fatal(err)
			}
			if len(flags) != 1 {
				t.Errorf("%d flags exist, want exactly 1", len(flags))
			}
			if _, ok := srv.FlagJSON(tutorialSite, "new_checkout"); !ok {
				t.Error("the sandbox does not hold the flag")
			}
			if tt.wantPosts == 1 && !strings.Contains(logs.String(), "create response lost") {
				t.Errorf("the lost response was not logged:\n%s", logs.String())
			}
		})
	}
}

// tokenRecorder is an http.RoundTripper that remembers every bearer token sent, so the
// canary test knows which tokens must never appear in logs or errors.
type tokenRecorder struct {
	mu     sync.Mutex
	tokens map[string]bool
}

func (r *tokenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		r.mu.Lock()
		r.tokens[tok] = true
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestSandboxCanarySecretsNeverLeak(t *testing.T) {
	const canaryID, canarySecret = "canary-client", "canary-secret-3b7e9c1d"
	logs := &logtest.Buffer{}
	rec := &tokenRecorder{tokens: map[string]bool{}}
	srv, c := sandboxClient(t, ksandbox.Options{ClientID: canaryID, ClientSecret: canarySecret}, func(cfg *Config) {
		cfg.Logger = testConfig("", logs).Logger
		cfg.HTTPClient = &http.Client{Transport: rec}
	})
	ctx := context.Background()
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	f := &kmodel.Flag{SiteCode: tutorialSite, FeatureKey: "canary", Name: "Canary", Variations: []kmodel.Variation{{Key: "off"}, {Key: "on"}}}
	_, err := c.CreateFlag(ctx, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateFlag(ctx, f, nil) // 409
	keep(err)
	_, err = c.GetFlag(ctx, tutorialSite, "missing") // 404
	keep(err)
	_, err = c.PatchEnvironment(ctx, tutorialSite, "canary", "Canary", "production", kmodel.Environment{DefaultVariationKey: "nope"}, []string{"defaultVariationKey"}) // 400
	keep(err)
	srv.RevokeTokens() // 401, re-auth
	_, err = c.ListFlags(ctx, tutorialSite)
	keep(err)
	srv.InjectFault(ksandbox.Fault{Method: "GET", Status: 500, Count: 100}) // retries, then a 500
	_, err = c.GetFlag(ctx, tutorialSite, "canary")
	keep(err)

	// The token endpoint's error path: a client with a wrong secret (itself a canary).
	wrong := canarySecret + "-wrong"
	bad := newTestClient(t, Config{BaseURL: c.base, ClientID: canaryID, ClientSecret: wrong, Logger: testConfig("", logs).Logger, BackoffBase: time.Millisecond})
	_, err = bad.ListFlags(ctx, tutorialSite)
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || apiErr.Message != "invalid_client: client authentication failed" {
		t.Errorf("wrong secret: err = %v, want 401 invalid_client", err)
	}
	keep(err)

	if len(errs) != 5 {
		t.Errorf("%d errors, want 5 (409, 404, 400, 500, 401): %v", len(errs), errs)
	}
	rec.mu.Lock()
	tokens := make([]string, 0, len(rec.tokens))
	for tok := range rec.tokens {
		tokens = append(tokens, tok)
	}
	rec.mu.Unlock()
	if len(tokens) != 2 {
		t.Errorf("%d tokens used, want 2 (one revoked, one new)", len(tokens))
	}
	secrets := append([]string{canarySecret, wrong}, tokens...)
	var text strings.Builder
	for _, err := range errs {
		fmt.Fprintf(&text, "%v\n", err)
		if errors.As(err, &apiErr) {
			fmt.Fprintf(&text, "%s\n%s\n", apiErr.Message, apiErr.Body)
		}
	}
	assertNoSecrets(t, "errors", text.String(), secrets...)
	assertNoSecrets(t, "debug logs", logs.String(), secrets...)
	if !strings.Contains(logs.String(), "level=DEBUG msg=\"API call\"") {
		t.Errorf("no debug lines captured:\n%s", logs.String())
	}
}
