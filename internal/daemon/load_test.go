package daemon

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/gitsource"
	"github.com/flagsync/flagsync/internal/loadcache"
	"github.com/flagsync/flagsync/internal/provider/providertest/fake"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// mapSource serves in-memory revisions of a repository.
type mapSource struct {
	mu      sync.Mutex
	rev     string
	fs      fstest.MapFS
	changed []string
}

func (s *mapSource) Fetch(context.Context) (*gitsource.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &gitsource.Snapshot{Revision: s.rev, FS: s.fs}, nil
}

func (s *mapSource) ChangedFiles(context.Context, string, string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed, nil
}

// countingVendor counts the loads of the vendor it wraps.
type countingVendor struct {
	reconcile.Vendor
	loads atomic.Int64
}

func (v *countingVendor) Load(src reconcile.Source) (reconcile.Repo, error) {
	v.loads.Add(1)
	return v.Vendor.Load(src)
}

func fakeFlag(key, value string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte("vendor: fake\nkey: " + key + "\nenabled: true\nvalue: " + value + "\n")}
}

// TestOneLoadPerSync: a full sync loads the revision once (its index and its sync share
// the load), and a partial sync loads the changed files once.
func TestOneLoadPerSync(t *testing.T) {
	svc := fake.NewServer()
	v := &countingVendor{Vendor: fake.Vendor(fake.NewClient(svc, api.NewBudgetWindows(api.Window{Period: time.Hour, Limit: 1000}), nil))}
	src := &mapSource{rev: "r1", fs: fstest.MapFS{"flags/a.yaml": fakeFlag("a", "blue"), "flags/b.yaml": fakeFlag("b", "blue")}}
	d, err := New(Config{Source: src, Dir: "flags", Vendors: []reconcile.Vendor{v}, Calls: func() int64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	d.RequestSync("test")
	d.cycle(ctx)
	if got := d.Status().Syncs[0]; got.Mode != ModeFull || got.Result != ResultSuccess || svc.Writes() != 2 {
		t.Fatalf("first sync: %+v, %d writes", got, svc.Writes())
	}
	if n := v.loads.Load(); n != 1 {
		t.Errorf("a full sync loaded the repository %d times, want 1", n)
	}

	src.mu.Lock()
	src.rev, src.changed = "r2", []string{"flags/b.yaml"}
	src.fs = fstest.MapFS{"flags/a.yaml": fakeFlag("a", "blue"), "flags/b.yaml": fakeFlag("b", "green")}
	src.mu.Unlock()
	d.request("test", false, nil)
	d.cycle(ctx)
	if got := d.Status().Syncs[0]; got.Mode != ModePartial || got.Result != ResultSuccess || svc.Writes() != 3 {
		t.Fatalf("second sync: %+v, %d writes", got, svc.Writes())
	}
	if n := v.loads.Load() - 1; n != 1 {
		t.Errorf("a partial sync loaded the changed files %d times, want 1", n)
	}
}

// TestSecondSyncOfARevisionParsesNothing: the daemon keeps one validation cache for its
// lifetime, and its loads key it by the Git snapshot's blob ids: a second full sync of an
// unchanged revision parses no flag file.
func TestSecondSyncOfARevisionParsesNothing(t *testing.T) {
	cache := loadcache.Open(t.TempDir(), loadcache.Options{})
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.Cache = cache }})
	first := h.waitStartup()
	h.d.RequestSync("signal")
	second := h.waitCycle(2)
	if second.Revision != first.Revision || second.Mode != ModeFull || second.Result != ResultSuccess {
		t.Fatalf("second sync: %+v, want a full sync of %s", second, first.Revision)
	}
	type loaded struct {
		Msg                   string
		Files, Cached, Parsed int
		Cache                 string
	}
	var loads []loaded
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var l loaded
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "Kameleoon flag files loaded" {
			loads = append(loads, l)
		}
	}
	if len(loads) != 2 {
		t.Fatalf("%d loads logged, want 2: %+v", len(loads), loads)
	}
	if l := loads[0]; l.Files == 0 || l.Parsed != l.Files || l.Cache != cache.Dir() {
		t.Errorf("first load: %+v, want every file parsed into %s", l, cache.Dir())
	}
	if l := loads[1]; l.Files != loads[0].Files || l.Cached != l.Files || l.Parsed != 0 {
		t.Errorf("second load: %+v, want every file from the cache", l)
	}
}
