package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/plan"
)

// fakeDoer records every request and answers from a table keyed by "METHOD path".
type fakeDoer struct {
	mu       sync.Mutex
	sent     []api.Request
	errs     map[string]error
	inFlight map[string]int // per path prefix /feature-flags/site/key, to catch overlap
	maxAll   int
	nowAll   int
	overlap  []string
	hook     func(ctx context.Context, req api.Request) error // runs outside the lock
}

func newFake() *fakeDoer {
	return &fakeDoer{errs: map[string]error{}, inFlight: map[string]int{}}
}

func (f *fakeDoer) Do(ctx context.Context, req api.Request) (json.RawMessage, error) {
	key := flagOf(req)
	f.mu.Lock()
	f.sent = append(f.sent, req)
	f.inFlight[key]++
	if f.inFlight[key] > 1 {
		f.overlap = append(f.overlap, key)
	}
	f.nowAll++
	if f.nowAll > f.maxAll {
		f.maxAll = f.nowAll
	}
	err := f.errs[req.Method+" "+req.Path]
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if herr := hook(ctx, req); herr != nil && err == nil {
			err = herr
		}
	}
	f.mu.Lock()
	f.inFlight[key]--
	f.nowAll--
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return json.RawMessage(`{}`), nil
}

func (f *fakeDoer) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.sent))
	for i, r := range f.sent {
		out[i] = r.Method + " " + r.Path
	}
	return out
}

// flagOf names the flag a request touches; a create is named by its body.
func flagOf(req api.Request) string {
	if req.Method == "POST" {
		var b struct{ SiteCode, FeatureKey string }
		_ = json.Unmarshal(req.Body, &b)
		return flagPath(b.SiteCode, b.FeatureKey)
	}
	parts := strings.Split(req.Path, "/")
	return strings.Join(parts[:4], "/")
}

// flagPath is the path of one flag in the test's API.
func flagPath(scope, key string) string { return "/feature-flags/" + scope + "/" + key }

// change builds a change of flag key on site "s1"; env "" is a flag-level change.
func change(order int, action plan.Action, key, env string) plan.Change {
	c := plan.Change{Order: order, Action: action, Address: plan.Address{Scope: "s1", Key: key, Environment: env}}
	switch {
	case action == plan.ActionCreate:
		c.Request = api.Request{Method: "POST", Path: "/feature-flags", Body: json.RawMessage(fmt.Sprintf(`{"siteCode":"s1","featureKey":%q}`, key))}
	case env != "":
		c.Request = api.Request{Method: "PATCH", Path: flagPath("s1", key) + "/" + env, Body: json.RawMessage(`{}`)}
	default:
		c.Request = api.Request{Method: "PATCH", Path: flagPath("s1", key), Body: json.RawMessage(`{}`)}
	}
	return c
}

// samplePlan has three flags: a with a create, b with three ordered patches, c with one.
func samplePlan() plan.Plan {
	return plan.Plan{Revision: "rev1", Changes: []plan.Change{
		change(1, plan.ActionCreate, "a", ""),
		change(2, plan.ActionUpdate, "b", ""),
		change(3, plan.ActionUpdate, "b", "development"),
		change(4, plan.ActionUpdate, "b", "production"),
		change(5, plan.ActionUpdate, "c", "production"),
	}}
}

func statuses(out Outcome) []string {
	s := make([]string, len(out.Results))
	for i, r := range out.Results {
		s[i] = fmt.Sprintf("%d:%s", r.Change.Order, r.Status)
		if r.Note != "" {
			s[i] += "(" + r.Note + ")"
		}
	}
	return s
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

func TestPlanAppliesEveryChangeInFlagOrder(t *testing.T) {
	f := newFake()
	out := Plan(context.Background(), f, samplePlan(), Options{Concurrency: 3})

	want := []string{"1:applied", "2:applied", "3:applied", "4:applied", "5:applied"}
	if got := statuses(out); !equal(got, want) {
		t.Fatalf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out.Summary != (Summary{Applied: 5}) {
		t.Errorf("summary = %+v", out.Summary)
	}
	// b's changes went out in their order, whatever the interleaving with a and c.
	var bOrder []string
	for _, r := range f.requests() {
		if strings.Contains(r, "/s1/b") {
			bOrder = append(bOrder, r)
		}
	}
	wantB := []string{"PATCH /feature-flags/s1/b", "PATCH /feature-flags/s1/b/development", "PATCH /feature-flags/s1/b/production"}
	if !equal(bOrder, wantB) {
		t.Errorf("flag b requests = %q, want %q", bOrder, wantB)
	}
	if len(f.overlap) > 0 {
		t.Errorf("changes of one flag overlapped: %q", f.overlap)
	}
}

func TestPlanRunsFlagsConcurrentlyWithinTheLimit(t *testing.T) {
	var p plan.Plan
	for i := range 12 {
		p.Changes = append(p.Changes, change(2*i+1, plan.ActionUpdate, fmt.Sprintf("f%02d", i), "development"))
		p.Changes = append(p.Changes, change(2*i+2, plan.ActionUpdate, fmt.Sprintf("f%02d", i), "production"))
	}
	for _, limit := range []int{1, 3} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			f := newFake()
			// Each call waits until `limit` calls are in flight (or a short while passes), so
			// a run that never reaches the limit is visible in maxAll.
			var mu sync.Mutex
			arrived := 0
			gate := make(chan struct{})
			f.hook = func(context.Context, api.Request) error {
				mu.Lock()
				arrived++
				if arrived == limit {
					close(gate)
				}
				mu.Unlock()
				select {
				case <-gate:
				case <-time.After(2 * time.Second):
				}
				return nil
			}
			out := Plan(context.Background(), f, p, Options{Concurrency: limit})
			if out.Summary.Applied != len(p.Changes) {
				t.Fatalf("summary = %+v", out.Summary)
			}
			if f.maxAll != limit {
				t.Errorf("at most %d requests in flight, want exactly %d", f.maxAll, limit)
			}
			if len(f.overlap) > 0 {
				t.Errorf("changes of one flag overlapped: %q", f.overlap)
			}
		})
	}
}

func TestPlanFailureSkipsTheRestOfThatFlagOnly(t *testing.T) {
	f := newFake()
	f.errs["PATCH /feature-flags/s1/b/development"] = &api.Error{Status: 400, Method: "PATCH", Path: "/feature-flags/s1/b/development", Message: "bad rule"}
	out := Plan(context.Background(), f, samplePlan(), Options{})

	want := []string{"1:applied", "2:applied", "3:failed", "4:skipped(" + ReasonFlagFailed + ")", "5:applied"}
	if got := statuses(out); !equal(got, want) {
		t.Fatalf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out.Summary != (Summary{Applied: 3, Failed: 1, Skipped: 1}) {
		t.Errorf("summary = %+v", out.Summary)
	}
	var apiErr *api.Error
	if err := out.Results[2].Err; !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Errorf("failed change error = %v, want the *api.Error", err)
	}
	if msg := out.Results[2].Err.Error(); !strings.HasPrefix(msg, "update s1/b/development: ") {
		t.Errorf("error %q does not say what was being done to what", msg)
	}
	for _, r := range f.requests() {
		if r == "PATCH /feature-flags/s1/b/production" {
			t.Error("a change after the failed one was sent")
		}
	}
}

func TestPlanConflictOnCreate(t *testing.T) {
	conflict := &api.Error{Status: 409, Message: "feature flag already exists"}
	tests := []struct {
		name string
		key  string // request that answers 409
		want []string
	}{
		{"create is already applied", "POST /feature-flags",
			[]string{"1:applied(" + NoteAlreadyExists + ")", "2:applied", "3:applied", "4:applied", "5:applied"}},
		{"patch is a failure", "PATCH /feature-flags/s1/c/production",
			[]string{"1:applied", "2:applied", "3:applied", "4:applied", "5:failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.errs[tt.key] = conflict
			out := Plan(context.Background(), f, samplePlan(), Options{})
			if got := statuses(out); !equal(got, tt.want) {
				t.Fatalf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestPlanDryRunSendsNothing(t *testing.T) {
	f := newFake()
	var seen int
	var mu sync.Mutex
	out := Plan(context.Background(), f, samplePlan(), Options{DryRun: true, OnResult: func(Result) { mu.Lock(); seen++; mu.Unlock() }})
	if n := len(f.requests()); n != 0 {
		t.Fatalf("dry run sent %d requests", n)
	}
	for _, r := range out.Results {
		if r.Status != Skipped || r.Note != ReasonDryRun {
			t.Errorf("change %d: %s (%s), want skipped (dry run)", r.Change.Order, r.Status, r.Note)
		}
	}
	if seen != 5 {
		t.Errorf("OnResult called %d times, want 5", seen)
	}
}

func TestPlanEmpty(t *testing.T) {
	out := Plan(context.Background(), newFake(), plan.Plan{}, Options{})
	if len(out.Results) != 0 || out.Summary != (Summary{}) {
		t.Errorf("empty plan gave %+v", out)
	}
}

func TestPlanCancelledBeforeStartSendsNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := newFake()
	out := Plan(ctx, f, samplePlan(), Options{})
	if n := len(f.requests()); n != 0 {
		t.Fatalf("cancelled run sent %d requests", n)
	}
	if out.Summary != (Summary{Skipped: 5}) {
		t.Errorf("summary = %+v", out.Summary)
	}
}

// TestPlanCancelledMidFlag cancels while flag b's first change is in flight (concurrency 1,
// so b is the only flag running and c has not started).
func TestPlanCancelledMidFlag(t *testing.T) {
	p := plan.Plan{Revision: "rev1", Changes: samplePlan().Changes[1:]} // b (3 changes), c
	tests := []struct {
		name          string
		finishStarted bool
		want          []string
	}{
		{"in-flight change finishes, rest skipped", false,
			[]string{"2:applied", "3:skipped(" + ReasonCancelled + ")", "4:skipped(" + ReasonCancelled + ")", "5:skipped(" + ReasonCancelled + ")"}},
		{"finish started flag", true,
			[]string{"2:applied", "3:applied", "4:applied", "5:skipped(" + ReasonCancelled + ")"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := newFake()
			var once sync.Once
			f.hook = func(reqCtx context.Context, req api.Request) error {
				once.Do(cancel) // the signal arrives while the first request is in flight
				return reqCtx.Err()
			}
			out := Plan(ctx, f, p, Options{Concurrency: 1, FinishStarted: tt.finishStarted})
			if got := statuses(out); !equal(got, tt.want) {
				t.Fatalf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestPlanHardCancelStopsInFlightRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	hard, hardCancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFake()
	f.hook = func(reqCtx context.Context, req api.Request) error {
		cancel()
		hardCancel() // the deadline passes while the request waits
		<-reqCtx.Done()
		return reqCtx.Err()
	}
	p := plan.Plan{Changes: samplePlan().Changes[1:4]} // flag b only
	out := Plan(ctx, f, p, Options{Concurrency: 1, FinishStarted: true, Hard: hard})
	want := []string{"2:failed", "3:skipped(" + ReasonFlagFailed + ")", "4:skipped(" + ReasonFlagFailed + ")"}
	if got := statuses(out); !equal(got, want) {
		t.Fatalf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !errors.Is(out.Results[0].Err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", out.Results[0].Err)
	}
}

func TestGraceContextEndsAfterParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx, stop := graceContext(parent, 20*time.Millisecond)
	defer stop()
	cancel()
	if ctx.Err() != nil {
		t.Fatal("grace context ended with its parent, want it to outlive it")
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("grace context never ended after its parent")
	}
}

func TestPlanLogsCarryRevisionFlagEnvAction(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFake()
	f.errs["PATCH /feature-flags/s1/c/production"] = &api.Error{Status: 422, Message: "no"}
	Plan(context.Background(), f, samplePlan(), Options{Logger: logger, Concurrency: 1})

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d log lines, want one per change:\n%s", len(lines), buf.String())
	}
	envs := 0
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["revision"] != "rev1" || rec["flag"] == nil || rec["action"] == nil {
			t.Errorf("log line lacks revision/flag/action: %s", line)
		}
		if rec["env"] != nil {
			envs++
		}
	}
	if envs != 3 {
		t.Errorf("%d log lines carry env, want 3 (one per environment change):\n%s", envs, buf.String())
	}
	if !strings.Contains(buf.String(), `"level":"WARN","msg":"change failed"`) {
		t.Errorf("failed change not logged as a warning:\n%s", buf.String())
	}
}

func TestResultJSON(t *testing.T) {
	r := Result{Change: change(3, plan.ActionUpdate, "b", "production"), Status: Failed, Err: errors.New("update s1/b/production: boom"), Duration: 1500 * time.Millisecond}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"order":3,"action":"update","service":"","scope":"s1","key":"b","environment":"production","status":"failed","error":"update s1/b/production: boom","durationMs":1500}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
