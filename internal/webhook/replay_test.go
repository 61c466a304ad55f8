package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// protected turns on the replay and burst protection of the daemon.
func protected(o *Options) { o.RevisionDedupe = true }

// TestReplayWithFreshIDs: one captured signed body, re-sent 200 times with a fresh
// delivery id each time, triggers one OnPush, for every provider; the re-sends are
// answered 200 duplicate.
func TestReplayWithFreshIDs(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		secret  string
		headers func(id string, body []byte) http.Header
	}{
		{"github", "github-push.json", canary, func(id string, b []byte) http.Header { return githubHeaders(canary, "push", id, b) }},
		{"gitlab token", "gitlab-push.json", canary, func(id string, b []byte) http.Header { return gitlabTokenHeaders(canary, id) }},
		{"gitlab signed", "gitlab-push.json", standardCanary, func(id string, b []byte) http.Header {
			return gitlabSignedHeaders(standardCanary, id, testNow, b)
		}},
		{"gitea", "gitea-push.json", canary, func(id string, b []byte) http.Header { return giteaHeaders(canary, "push", id, b) }},
		{"forgejo", "gitea-push.json", canary, func(id string, b []byte) http.Header { return forgejoHeaders(canary, id, b) }},
		{"gogs", "gitea-push.json", canary, func(id string, b []byte) http.Header { return gogsHeaders(canary, id, b) }},
		{"bitbucket cloud", "bitbucket-cloud-push.json", canary, func(id string, b []byte) http.Header {
			return bitbucketCloudHeaders(canary, "repo:push", id, b)
		}},
		{"bitbucket server", "bitbucket-server-refs-changed.json", canary, func(id string, b []byte) http.Header {
			return bitbucketServerHeaders(canary, "repo:refs_changed", id, b)
		}},
		{"generic", "generic-push.json", canary, func(id string, b []byte) http.Header { return genericHeaders(canary, id, b) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { protected(o); o.Secret = []byte(tc.secret) })
			body := readTestdata(t, tc.file)
			const sends = 200
			dups := 0
			for i := range sends {
				resp := e.post("/webhook", tc.headers(fmt.Sprintf("fresh-id-%d", i), body), body)
				switch {
				case i == 0 && resp.outcome != OutcomeAccepted:
					t.Fatalf("first delivery: %d %q (%s)", resp.status, resp.outcome, resp.reason)
				case i > 0 && resp.status == http.StatusOK && resp.outcome == OutcomeDuplicate && resp.reason == ReasonSamePush:
					dups++
				}
			}
			if dups != sends-1 {
				t.Errorf("%d of %d re-sends answered 200 duplicate, want all", dups, sends-1)
			}
			if n := len(e.got()); n != 1 {
				t.Errorf("OnPush called %d times for one body sent %d times, want 1", n, sends)
			}
			e.assertClean()
		})
	}
}

// TestConcurrentDeliveriesOneRevision: 100 deliveries of one push at once, each with
// its own id, trigger one OnPush.
func TestConcurrentDeliveriesOneRevision(t *testing.T) {
	e := newEnv(t, protected)
	body := readTestdata(t, "github-push.json")
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for i := range 100 {
		wg.Go(func() {
			resp := e.post("/webhook", githubHeaders(canary, "push", fmt.Sprintf("burst-%d", i), body), body)
			mu.Lock()
			outcomes[resp.outcome]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if n := len(e.got()); n != 1 {
		t.Errorf("100 concurrent deliveries of one push: OnPush called %d times, want 1", n)
	}
	if outcomes[OutcomeAccepted] != 1 || outcomes[OutcomeDuplicate] != 99 {
		t.Errorf("outcomes %v, want 1 accepted and 99 duplicate", outcomes)
	}
}

func genericPushBody(before, after string) []byte {
	b, _ := json.Marshal(map[string]string{"ref": "refs/heads/main", "before": before, "after": after, "repository": "acme/flags"})
	return b
}

// TestBranchMovedBackAndForth: de-duplication does not swallow a real push that
// repeats an earlier transition (main reset to an old commit and pushed forward
// again), while replays of either push stay duplicates.
func TestBranchMovedBackAndForth(t *testing.T) {
	e := newEnv(t, protected)
	c0, c1 := strings.Repeat("a", 40), strings.Repeat("b", 40)
	forward, back := genericPushBody(c0, c1), genericPushBody(c1, c0)
	send := func(id string, body []byte) string {
		return e.post("/webhook/generic", genericHeaders(canary, id, body), body).outcome
	}
	steps := []struct {
		id   string
		body []byte
		want string
	}{
		{"1", forward, OutcomeAccepted},
		{"2", forward, OutcomeDuplicate}, // replay
		{"3", back, OutcomeAccepted},     // reset to c0
		{"4", back, OutcomeDuplicate},    // replay
		{"5", forward, OutcomeAccepted},  // pushed forward again: a real push
		{"6", forward, OutcomeDuplicate}, // and its replay
		{"7", back, OutcomeDuplicate},    // an old push replayed: main is at c1
		{"", forward, OutcomeDuplicate},  // no delivery id at all
	}
	for i, st := range steps {
		if got := send(st.id, st.body); got != st.want {
			t.Errorf("step %d: %q, want %q", i+1, got, st.want)
		}
	}
	if n := len(e.got()); n != 3 {
		t.Errorf("OnPush called %d times, want 3", n)
	}
}

// TestAlternatingReplays: two captured pushes (forward and back) replayed in turn,
// 100 times each with fresh ids, gain at most one acceptance beyond the two genuine
// deliveries.
func TestAlternatingReplays(t *testing.T) {
	e := newEnv(t, protected)
	c0, c1 := strings.Repeat("a", 40), strings.Repeat("b", 40)
	forward, back := genericPushBody(c0, c1), genericPushBody(c1, c0)
	for i := range 202 {
		body := forward
		if i%2 == 1 {
			body = back
		}
		e.post("/webhook/generic", genericHeaders(canary, fmt.Sprint("id-", i), body), body)
	}
	if n := len(e.got()); n > 3 {
		t.Errorf("OnPush called %d times for 2 genuine pushes and 200 replays, want at most 3", n)
	}
}

// TestAlreadyApplied: a push naming the revision already applied and converged is
// answered without OnPush; another revision is accepted.
func TestAlreadyApplied(t *testing.T) {
	applied := strings.Repeat("c", 40)
	var asked []string
	e := newEnv(t, func(o *Options) {
		protected(o)
		o.AlreadyApplied = func(branch, revision string) bool {
			asked = append(asked, branch+"@"+revision)
			return revision == applied
		}
	})
	body := genericPushBody(strings.Repeat("b", 40), applied)
	resp := e.post("/webhook/generic", genericHeaders(canary, "a1", body), body)
	if resp.status != http.StatusOK || resp.outcome != OutcomeUpToDate || resp.reason != ReasonAlreadyApplied {
		t.Errorf("push of the applied revision: %d %q (%s), want 200 up_to_date", resp.status, resp.outcome, resp.reason)
	}
	if n := len(e.got()); n != 0 {
		t.Fatalf("OnPush called %d times for an applied revision", n)
	}
	other := genericPushBody(applied, strings.Repeat("d", 40))
	if resp := e.post("/webhook/generic", genericHeaders(canary, "a2", other), other); resp.outcome != OutcomeAccepted {
		t.Errorf("push of a new revision: %q, want accepted", resp.outcome)
	}
	if n := len(e.got()); n != 1 {
		t.Errorf("OnPush called %d times, want 1", n)
	}
	if want := "main@" + applied; len(asked) != 2 || asked[0] != want {
		t.Errorf("AlreadyApplied asked %v, want %s first", asked, want)
	}
	if obs := e.observations(); len(obs) != 2 || obs[0] != "generic/"+OutcomeUpToDate {
		t.Errorf("observed %v", obs)
	}
}

// TestRateLimitPerSource: each source may have RateBurst deliveries accepted at once,
// then gets 429 with Retry-After; other sources are not affected; duplicates and
// refused deliveries do not count; a delivery refused for the rate is accepted when
// retried after the wait, with the same delivery id.
func TestRateLimitPerSource(t *testing.T) {
	var mu sync.Mutex
	now := testNow
	e := newEnv(t, func(o *Options) {
		protected(o)
		o.RateLimit, o.RateBurst = rate.Every(time.Minute), 3
		o.Source = func(r *http.Request) string { return r.Header.Get("X-Test-Source") }
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	push := func(src, id string, n int) response {
		body := genericPushBody(strings.Repeat("0", 39)+"1", fmt.Sprintf("%040x", n+2))
		hd := genericHeaders(canary, id, body)
		hd.Set("X-Test-Source", src)
		return e.post("/webhook/generic", hd, body)
	}
	for i := range 3 {
		if resp := push("a", fmt.Sprint("a", i), i); resp.outcome != OutcomeAccepted {
			t.Fatalf("delivery %d of source a: %q", i, resp.outcome)
		}
	}
	if resp := push("a", "a0", 0); resp.outcome != OutcomeDuplicate {
		t.Errorf("a duplicate after the burst: %q, want duplicate (not counted)", resp.outcome)
	}
	bad := genericPushBody(strings.Repeat("0", 40), strings.Repeat("e", 40))
	hd := genericHeaders("not-the-secret", "bad", bad)
	hd.Set("X-Test-Source", "a")
	if resp := e.post("/webhook/generic", hd, bad); resp.status != http.StatusUnauthorized {
		t.Errorf("a wrongly signed delivery: %d, want 401 (not 429)", resp.status)
	}
	limited := push("a", "a3", 3)
	if limited.status != http.StatusTooManyRequests || limited.outcome != OutcomeRateLimited {
		t.Fatalf("fourth delivery of source a: %d %q, want 429 rate_limited", limited.status, limited.outcome)
	}
	if ra := limited.header.Get("Retry-After"); ra != "60" {
		t.Errorf("Retry-After %q, want 60", ra)
	}
	if resp := push("b", "b0", 10); resp.outcome != OutcomeAccepted {
		t.Errorf("source b while a is limited: %q, want accepted", resp.outcome)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if resp := push("a", "a3", 3); resp.outcome != OutcomeAccepted {
		t.Errorf("the limited delivery retried after Retry-After: %q, want accepted", resp.outcome)
	}
	if resp := push("a", "a4", 4); resp.status != http.StatusTooManyRequests {
		t.Errorf("and the next: %d, want 429", resp.status)
	}
	if n := len(e.got()); n != 5 {
		t.Errorf("OnPush called %d times, want 5 (3 + 1 of a, 1 of b)", n)
	}
	e.assertClean()
}

// TestRateLimitDefaultSource: without Source, the peer's IP address is the source.
func TestRateLimitDefaultSource(t *testing.T) {
	e := newEnv(t, func(o *Options) { protected(o); o.RateLimit, o.RateBurst = rate.Every(time.Hour), 2 })
	var codes []int
	for i := range 3 {
		body := genericPushBody("", fmt.Sprintf("%040x", i+1))
		codes = append(codes, e.post("/webhook/generic", genericHeaders(canary, fmt.Sprint(i), body), body).status)
	}
	if fmt.Sprint(codes) != "[202 202 429]" {
		t.Errorf("statuses %v, want [202 202 429]", codes)
	}
}

func TestPushesBounded(t *testing.T) {
	p := newPushes(4)
	for i := range 20 {
		if ok, _ := p.reserve(newPushKey(Push{Provider: "github", Branch: fmt.Sprint("b", i), After: "x"})); !ok {
			t.Fatalf("push %d not new", i)
		}
	}
	if p.order.Len() > 4 || len(p.index) > 4 || len(p.head) > 4 {
		t.Errorf("memory not bounded: %d keys, %d heads", len(p.index), len(p.head))
	}
	// undo restores the previous state.
	k := newPushKey(Push{Provider: "github", Branch: "main", Before: "1", After: "2"})
	ok, undo := p.reserve(k)
	if !ok {
		t.Fatal("not new")
	}
	undo()
	if ok, _ := p.reserve(k); !ok {
		t.Error("a push forgotten by undo is not new again")
	}
}
