package kameleoon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

const (
	siteA = "sitea00001"
	siteB = "siteb00002"
)

// fakeClient serves fixed live flags and records every call. Writes are accepted but
// change nothing, so a re-read after applying still differs.
type fakeClient struct {
	mu    sync.Mutex
	live  []kmodel.Flag
	calls []string
}

func (f *fakeClient) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeClient) ListFlags(_ context.Context, site string) ([]kmodel.Flag, error) {
	f.record("LIST " + site)
	// Like the real endpoint may, return every site's flags: Run filters.
	return slices.Clone(f.live), nil
}

func (f *fakeClient) GetFlag(_ context.Context, site, key string) (kmodel.Flag, error) {
	f.record("GET " + site + "/" + key)
	for _, l := range f.live {
		if l.SiteCode == site && l.FeatureKey == key {
			return l, nil
		}
	}
	return kmodel.Flag{}, &api.Error{Status: http.StatusNotFound, Method: "GET", Path: kclient.FlagPath(site, key)}
}

func (f *fakeClient) Do(_ context.Context, req api.Request) (json.RawMessage, error) {
	f.record(req.Method + " " + req.Path)
	return json.RawMessage(`{}`), nil
}

func (f *fakeClient) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeClient) writes() []string {
	var out []string
	for _, c := range f.log() {
		if !strings.HasPrefix(c, "LIST ") && !strings.HasPrefix(c, "GET ") {
			out = append(out, c)
		}
	}
	return out
}

// repo is a valid flag repository: alpha and beta on site A (the default), gamma on B.
func repo() fstest.MapFS {
	return fstest.MapFS{
		"flags/flagsync.yaml": {Data: []byte("siteCode: " + siteA + "\nenvironments: [development, production]\n")},
		"flags/alpha.yaml":    {Data: []byte(flagYAML("alpha", "", true))},
		"flags/beta.yaml":     {Data: []byte(flagYAML("beta", "", false))},
		"flags/b/gamma.yaml":  {Data: []byte(flagYAML("gamma", siteB, true))},
	}
}

func flagYAML(key, site string, prodOn bool) string {
	s := ""
	if site != "" {
		s = "siteCode: " + site + "\n"
	}
	return s + fmt.Sprintf(`featureKey: %s
name: Flag %s
variations:
  - {key: "off", name: Off}
  - {key: "on", name: On}
environments:
  development:
    featureEnabled: true
    defaultVariationKey: "on"
  production:
    featureEnabled: %t
    defaultVariationKey: "off"
`, key, key, prodOn)
}

// liveOf returns the live form of the repository's flags, as the API would list them
// after a sync (ownership tag included).
func liveOf(t *testing.T, fsys fstest.MapFS) []kmodel.Flag {
	t.Helper()
	d, err := kload.Load(fsys, "flags")
	if err != nil {
		t.Fatal(err)
	}
	var live []kmodel.Flag
	for i, f := range d.Flags {
		f.ID = int64(100 + i)
		f.Tags = append(slices.Clone(f.Tags), kmodel.OwnershipTag)
		f.Source = kmodel.Source{}
		live = append(live, f)
	}
	return live
}

func TestRunInvalidFilesCallNothing(t *testing.T) {
	fsys := repo()
	fsys["flags/beta.yaml"] = &fstest.MapFile{Data: []byte("featureKey: Beta!\nname: 7\n")}
	c := &fakeClient{}
	rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r1", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}})

	var invalid *diag.InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("err = %v, want a *diag.InvalidError", err)
	}
	if len(rep.Diagnostics) == 0 || len(rep.Diagnostics) != len(invalid.Diagnostics) {
		t.Errorf("report carries %d diagnostics, error %d", len(rep.Diagnostics), len(invalid.Diagnostics))
	}
	if calls := c.log(); len(calls) != 0 {
		t.Errorf("invalid files made API calls: %q", calls)
	}
}

func TestRunReadsEachSiteOnceAndReportsRemaining(t *testing.T) {
	fsys := repo()
	live := liveOf(t, fsys)
	live[0].Environments["production"] = kmodel.Environment{FeatureEnabled: false, DefaultVariationKey: "off"} // alpha drifted
	live = append(live[:1], live[2:]...)                                                                       // beta missing
	live = append(live, kmodel.Flag{ID: 9, SiteCode: siteA, FeatureKey: "legacy", Name: "Legacy"})             // not in Git
	live = append(live, kmodel.Flag{ID: 10, SiteCode: "sitec00003", FeatureKey: "other", Name: "Other"})       // another site
	c := &fakeClient{live: live}

	rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r1", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}})
	if err != nil {
		t.Fatal(err)
	}
	wantCalls := []string{
		"LIST " + siteA, "LIST " + siteB, // one read per site, sorted
		"PATCH " + kclient.EnvironmentPath(siteA, "alpha", "production"), // then the writes (order within a flag)
		"POST /feature-flags",
		"LIST " + siteA, // confirm: only the touched site is read again
	}
	if got := c.log(); !sameCalls(got, wantCalls) {
		t.Errorf("calls:\n  %s\nwant (any order among the writes):\n  %s", strings.Join(got, "\n  "), strings.Join(wantCalls, "\n  "))
	}
	if !slices.Equal(rep.Sites, []string{siteA, siteB}) {
		t.Errorf("sites = %q", rep.Sites)
	}
	if want := []plan.Address{{Service: "Kameleoon", Scope: siteA, Key: "legacy"}}; !slices.Equal(rep.Plan.Unmanaged, want) {
		t.Errorf("unmanaged = %v, want %v", rep.Plan.Unmanaged, want)
	}
	if rep.Summary != (apply.Summary{Applied: 2}) {
		t.Errorf("summary = %+v", rep.Summary)
	}
	// The fake accepts writes without changing anything, so both changes remain.
	if !rep.Verified || rep.Converged || len(rep.Remaining) != 2 {
		t.Errorf("verified=%t converged=%t remaining=%d, want true false 2", rep.Verified, rep.Converged, len(rep.Remaining))
	}
}

// sameCalls compares call logs, letting the writes between the reads come in any order
// (flags are applied concurrently).
func sameCalls(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	norm := func(s []string) []string {
		out := slices.Clone(s)
		start := -1
		for i := 0; i <= len(out); i++ {
			isWrite := i < len(out) && !strings.HasPrefix(out[i], "LIST ") && !strings.HasPrefix(out[i], "GET ")
			switch {
			case isWrite && start < 0:
				start = i
			case !isWrite && start >= 0:
				slices.Sort(out[start:i])
				start = -1
			}
		}
		return out
	}
	return slices.Equal(norm(got), norm(want))
}

func TestRunInSyncWritesNothing(t *testing.T) {
	fsys := repo()
	c := &fakeClient{live: liveOf(t, fsys)}
	rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r1", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.log(), []string{"LIST " + siteA, "LIST " + siteB}; !slices.Equal(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
	if !rep.Converged || len(rep.Plan.Changes) != 0 {
		t.Errorf("converged=%t changes=%d, want true 0", rep.Converged, len(rep.Plan.Changes))
	}
}

func TestRunPartialGetsOnlyTheNamedFlags(t *testing.T) {
	fsys := repo()
	live := liveOf(t, fsys)
	for i := range live {
		live[i].Name += " (edited in the UI)"
	}
	live = append(live, kmodel.Flag{ID: 9, SiteCode: siteA, FeatureKey: "legacy", Name: "Legacy"})
	c := &fakeClient{live: live}
	only := []plan.Address{{Service: "Kameleoon", Scope: siteA, Key: "alpha"}, {Service: "Kameleoon", Scope: siteA, Key: "legacy"}, {Service: "Kameleoon", Scope: siteA, Key: "ghost"}}

	rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r1", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}, Only: only, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET " + siteA + "/alpha", // legacy and ghost are not in Git: nothing to read
		"PATCH " + kclient.FlagPath(siteA, "alpha"),
		"GET " + siteA + "/alpha", // confirm: the touched flag only
	}
	if got := c.log(); !slices.Equal(got, want) {
		t.Errorf("calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if !rep.Partial || len(rep.Plan.Unmanaged) != 0 {
		t.Errorf("partial=%t unmanaged=%v, want a partial run with no unmanaged flags", rep.Partial, rep.Plan.Unmanaged)
	}
}

func TestRunGuards(t *testing.T) {
	fsys := repo()
	var live []kmodel.Flag // nothing exists yet: three creates
	for i := range 8 {
		live = append(live, kmodel.Flag{ID: int64(i + 1), SiteCode: siteA, FeatureKey: fmt.Sprintf("old%d", i), Name: "Old", Tags: []string{kmodel.OwnershipTag}})
	}
	tests := []struct {
		name      string
		in        reconcile.Input
		wantErr   func(error) bool
		wantPlans int
	}{
		{"max changes", reconcile.Input{MaxChanges: 2}, func(err error) bool {
			var e *reconcile.TooManyChangesError
			return errors.As(err, &e) && e.Changes == 3 && e.Max == 2
		}, 1},
		{"max changes in a dry run too", reconcile.Input{MaxChanges: 2, DryRun: true}, func(err error) bool {
			var e *reconcile.TooManyChangesError
			return errors.As(err, &e)
		}, 1},
		{"mass archive", reconcile.Input{Prune: true}, func(err error) bool {
			var e *plan.MassArchiveError
			return errors.As(err, &e) && len(e.Flags) == 8
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClient{live: live}
			in := tt.in
			in.Revision, in.FS, in.Dir, in.Vendors = "r1", fsys, "flags", []reconcile.Vendor{Vendor(c)}
			plans := 0
			in.OnPlan = func(plan.Plan) { plans++ }
			rep, err := reconcile.Run(context.Background(), in)
			if !tt.wantErr(err) {
				t.Fatalf("err = %v", err)
			}
			if w := c.writes(); len(w) != 0 {
				t.Errorf("a refused plan sent writes: %q", w)
			}
			if plans != tt.wantPlans || len(rep.Plan.Changes) == 0 {
				t.Errorf("OnPlan called %d times, plan has %d changes: the refused plan should still be shown", plans, len(rep.Plan.Changes))
			}
		})
	}
}

func TestRunDryRun(t *testing.T) {
	fsys := repo()
	c := &fakeClient{}
	rep, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r1", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.log(), []string{"LIST " + siteA, "LIST " + siteB}; !slices.Equal(got, want) {
		t.Errorf("dry run calls = %q, want only the reads %q", got, want)
	}
	if rep.Summary != (apply.Summary{Skipped: 3}) || rep.Converged || rep.Verified {
		t.Errorf("summary=%+v converged=%t verified=%t", rep.Summary, rep.Converged, rep.Verified)
	}
	for _, r := range rep.Results {
		if r.Note != apply.ReasonDryRun {
			t.Errorf("change %d skipped for %q", r.Change.Order, r.Note)
		}
	}
}

func TestRunCountsCallsAndLogsRevision(t *testing.T) {
	fsys := repo()
	c := &fakeClient{}
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rep, err := reconcile.Run(context.Background(), reconcile.Input{
		Revision: "r1", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}, Logger: logger,
		Calls: func() int64 { return int64(len(c.log())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.APICalls != int64(len(c.log())) || rep.APICalls == 0 {
		t.Errorf("APICalls = %d, client saw %d", rep.APICalls, len(c.log()))
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !strings.Contains(line, `"revision":"r1"`) {
			t.Errorf("log line without revision: %s", line)
		}
	}
}

func TestRunConfirmsWithTheFewestReads(t *testing.T) {
	fsys := repo()
	base := liveOf(t, fsys)
	for i := range 250 { // a big site: listing it again takes three pages
		base = append(base, kmodel.Flag{ID: int64(1000 + i), SiteCode: siteA, FeatureKey: fmt.Sprintf("ui_%03d", i), Name: "UI"})
	}
	tests := []struct {
		name   string
		edited []int // indexes of the repository's flags (alpha, beta, gamma) drifted live
		want   []string
	}{
		{"one flag: a get", []int{0}, []string{"GET " + siteA + "/alpha"}},
		{"two flags on two sites: two gets", []int{0, 2}, []string{"GET " + siteA + "/alpha", "GET " + siteB + "/gamma"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := slices.Clone(base)
			for _, i := range tt.edited {
				live[i].Name = "drifted"
			}
			c := &fakeClient{live: live}
			if _, err := reconcile.Run(context.Background(), reconcile.Input{Revision: "r1", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}}); err != nil {
				t.Fatal(err)
			}
			calls := c.log()
			confirm := calls[2+len(tt.edited):] // after the two lists and the writes
			if !slices.Equal(confirm, tt.want) {
				t.Errorf("confirming reads = %q, want %q", confirm, tt.want)
			}
		})
	}
}
