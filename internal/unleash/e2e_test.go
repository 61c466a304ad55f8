package unleash_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/unleash"
	unleashclient "github.com/flagsync/flagsync/internal/unleash/client"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	unleashplan "github.com/flagsync/flagsync/internal/unleash/plan"
	"github.com/flagsync/flagsync/internal/unleash/unleashtest"
)

func TestMain(m *testing.M) {
	code := unleashtest.Run(m)
	removeBinary()
	os.Exit(code)
}

// counter is a reverse proxy in front of the real server that records every request it
// passes on, so that call counts are the server's, not the client's own.
type counter struct {
	mu    sync.Mutex
	calls []string // "METHOD endpoint template"
	paths []string // "METHOD path", in the same order
}

// reset returns the calls recorded since the last reset, as "METHOD endpoint template",
// and forgets them.
func (c *counter) reset() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls, c.paths = nil, nil
	return out
}

// resetPaths is reset with each call's path instead of its template.
func (c *counter) resetPaths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.paths
	c.calls, c.paths = nil, nil
	return out
}

func writes(calls []string) []string {
	var out []string
	for _, c := range calls {
		if !strings.HasPrefix(c, "GET ") {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

func reads(calls []string) int { return len(calls) - len(writes(calls)) }

func startProxy(t *testing.T, target string) (*httptest.Server, *counter) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.calls = append(c.calls, r.Method+" "+unleashclient.EndpointTemplate(r.Method, r.URL.Path))
		c.paths = append(c.paths, r.Method+" "+r.URL.Path)
		c.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, c
}

// world is the real server, the counting proxy, a client through it, a flag repository
// in memory (examples/unleash under flags/), and how a sync runs: in this process through
// reconcile.Run, or through the flagsync binary (bin).
type world struct {
	s      *unleashtest.Server
	calls  *counter
	proxy  string // the proxy's URL
	client *unleashclient.Client
	fsys   fstest.MapFS
	rev    int
	bin    *binary // nil: syncs run in this process
}

// newWorld is the test binary's shared server, synced in this process. Only TestEndToEnd
// may use it: it creates segments and expects the default project to be its own.
func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldOn(t, unleashtest.Start(t))
}

func newWorldOn(t *testing.T, s *unleashtest.Server) *world {
	t.Helper()
	srv, calls := startProxy(t, s.BaseURL)
	// The client is given the SDKs' form of the URL, ending in /api.
	// The client-side budget is not under test here: a large one keeps the suite fast.
	client, err := unleashclient.New(unleashclient.Config{BaseURL: srv.URL + "/api", Token: s.AdminToken,
		Budget: unleashclient.NewBudget(1000, 60000)})
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	example := os.DirFS("../../examples/unleash")
	err = fs.WalkDir(example, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(example, p)
		fsys["flags/"+p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The segments the example names, and one an edit adds.
	for _, seg := range []string{"beta-testers", "internal"} {
		s.Call(t, http.MethodPost, "/api/admin/segments", map[string]any{"name": seg,
			"constraints": []map[string]any{{"contextName": "userId", "operator": "IN", "values": []string{"u-" + seg}}}}).Want(t, http.StatusCreated)
	}
	return &world{s: s, calls: calls, proxy: srv.URL, client: client, fsys: fsys}
}

// run syncs the repository as in says (DryRun, Prune, Only), in this process or through
// the binary.
func (w *world) run(t *testing.T, in reconcile.Input) (*reconcile.Report, error) {
	t.Helper()
	if w.bin != nil {
		w.calls.reset()
		return w.bin.sync(t, w.fsys, in)
	}
	w.rev++
	in.Revision = fmt.Sprintf("rev-%d", w.rev)
	in.FS, in.Dir = w.fsys, "flags"
	in.Vendors = []reconcile.Vendor{unleash.Vendor(w.client)}
	in.Logger = slog.New(slog.DiscardHandler)
	w.calls.reset()
	return reconcile.Run(context.Background(), in)
}

// edit replaces old with new in a flag file (old must be there).
func (w *world) edit(t *testing.T, file, old, new string) {
	t.Helper()
	f := w.fsys["flags/"+file]
	if f == nil || !strings.Contains(string(f.Data), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	w.fsys["flags/"+file] = &fstest.MapFile{Data: []byte(strings.Replace(string(f.Data), old, new, 1))}
}

func (w *world) write(file, data string) { w.fsys["flags/"+file] = &fstest.MapFile{Data: []byte(data)} }

// syncExpect syncs, checks that exactly want were written (sorted "METHOD template") and
// that the run converged, then syncs again and checks that nothing is written.
func (w *world) syncExpect(t *testing.T, want ...string) *reconcile.Report {
	t.Helper()
	rep, err := w.run(t, reconcile.Input{})
	calls := w.calls.reset()
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, render(rep.Plan))
	}
	slices.Sort(want)
	if got := writes(calls); !slices.Equal(got, want) {
		t.Errorf("writes:\n  %s\nwant:\n  %s\nplan:\n%s", strings.Join(got, "\n  "), strings.Join(want, "\n  "), render(rep.Plan))
	}
	if !rep.Converged {
		t.Errorf("not converged: %s; remaining %+v", rep.NotConverged(), rep.Remaining)
	}
	w.noWrites(t)
	return rep
}

// noWrites syncs and checks that the plan is empty and nothing was written.
func (w *world) noWrites(t *testing.T) *reconcile.Report {
	t.Helper()
	rep, err := w.run(t, reconcile.Input{})
	calls := w.calls.reset()
	if err != nil || len(rep.Plan.Changes) != 0 || len(writes(calls)) != 0 || !rep.Converged {
		t.Errorf("second sync: err=%v changes=%d writes=%v converged=%t\n%s", err, len(rep.Plan.Changes), writes(calls), rep.Converged, render(rep.Plan))
	}
	return rep
}

func render(p plan.Plan) string {
	var b strings.Builder
	_ = plan.RenderText(&b, p, plan.TextOptions{})
	return b.String()
}

const (
	pFeatures  = "/api/admin/projects/{project}/features"
	pFeature   = pFeatures + "/{feature}"
	pStrats    = pFeature + "/environments/{env}/strategies"
	pStrategy  = pStrats + "/{id}"
	pSortOrder = pStrats + "/set-sort-order"
	pOn        = pFeature + "/environments/{env}/on"
	pOff       = pFeature + "/environments/{env}/off"
	pTags      = "/api/admin/features/{feature}/tags"
	pRevive    = "/api/admin/archive/revive/{feature}"
)

// strategyIDs returns the ids of a flag's strategies in an environment, in order.
func strategyIDs(t *testing.T, s *unleashtest.Server, name, env string) []string {
	t.Helper()
	var f struct {
		Environments []struct {
			Name       string
			Strategies []struct{ ID string }
		}
	}
	s.Call(t, http.MethodGet, "/api/admin/projects/default/features/"+name, nil).Want(t, http.StatusOK).Decode(t, &f)
	var out []string
	for _, e := range f.Environments {
		if e.Name == env {
			for _, st := range e.Strategies {
				out = append(out, st.ID)
			}
		}
	}
	return out
}

// TestEndToEnd drives every step against the real unleash-server, in this process: see
// endToEnd. TestEndToEndThroughTheBinary drives the same steps through the flagsync
// command.
func TestEndToEnd(t *testing.T) { endToEnd(t, newWorld(t)) }

// endToEnd drives every step against the real unleash-server: validate, plan, sync, a
// second sync that writes nothing, every kind of edit, changes made through Unleash's own
// admin API, bad input, a partial run (in this process only: it is the daemon's) and the
// export round trip. Call counts are the counting proxy's, so they are the same whichever
// way the syncs run.
func endToEnd(t *testing.T, w *world) {

	t.Run("bad input: every problem reported, nothing called", func(t *testing.T) {
		good := w.fsys["flags/dark-mode.yaml"]
		w.edit(t, "dark-mode.yaml", "rollout: 10", "rollout: 140")
		rep, err := w.run(t, reconcile.Input{})
		var invalid *diag.InvalidError
		if err == nil || len(rep.Diagnostics) == 0 || len(w.calls.reset()) != 0 || (w.bin == nil && !errors.As(err, &invalid)) {
			t.Fatalf("err = %v, %d diagnostics; want the files' problems and no call", err, len(rep.Diagnostics))
		}
		if got := rep.Diagnostics[0].String(); got != "flags/dark-mode.yaml:14:31: environments.production.strategies[0].parameters.rollout: rollout is a percentage, a whole number from 0 to 100, got \"140\"" {
			t.Errorf("diagnostic = %s", got)
		}
		w.fsys["flags/dark-mode.yaml"] = good
	})

	t.Run("plan (dry run): reads only", func(t *testing.T) {
		rep, err := w.run(t, reconcile.Input{DryRun: true})
		calls := w.calls.reset()
		if err != nil || len(rep.Plan.Changes) != 26 || len(writes(calls)) != 0 {
			t.Fatalf("dry run: err=%v changes=%d writes=%v\n%s", err, len(rep.Plan.Changes), writes(calls), render(rep.Plan))
		}
		// The project list, the segments (Git names some), the archived flags (the
		// search: five flags Git has are missing).
		if reads(calls) != 3 {
			t.Errorf("dry run read with %d calls, want 3: %v", reads(calls), calls)
		}
		if s := rep.Plan.SummaryLine(); s != "Plan: 15 to create, 11 to update, 0 to archive." {
			t.Errorf("summary = %q", s)
		}
	})

	t.Run("first sync creates everything, confirmed", func(t *testing.T) {
		rep, err := w.run(t, reconcile.Input{})
		calls := w.calls.reset()
		if err != nil || !rep.Converged || rep.Summary.Applied != 26 {
			t.Fatalf("sync: err=%v converged=%t summary=%+v remaining=%+v", err, rep.Converged, rep.Summary, rep.Remaining)
		}
		if n := len(writes(calls)); n != 26 {
			t.Errorf("%d writes, want 26", n)
		}
		// 3 reads before, and to confirm: the list, the five flags' strategies, segments.
		if reads(calls) != 3+7 {
			t.Errorf("%d reads, want 10: %v", reads(calls), calls)
		}
		t.Logf("first sync of 5 flags: %d calls (%d reads, %d writes)", len(calls), reads(calls), len(writes(calls)))
	})

	t.Run("second sync writes nothing; a full read is 2 + one GET per flag with strategies", func(t *testing.T) {
		w.noWrites(t)
		rep, _ := w.run(t, reconcile.Input{})
		calls := w.calls.reset()
		if len(calls) != 7 || reads(calls) != 7 || len(rep.Plan.Unmanaged) != 0 {
			t.Errorf("second sync: %d calls, want 7 (list, 5 flags, segments): %v", len(calls), calls)
		}
		t.Logf("second sync of 5 flags: %d calls, 0 writes", len(calls))
	})

	var gradualID string
	t.Run("strategy parameter: one PUT, id kept", func(t *testing.T) {
		gradualID = strategyIDs(t, w.s, "new-checkout", "production")[1]
		w.edit(t, "checkout/new-checkout.yaml", "rollout: 25,", "rollout: 40,")
		rep, err := w.run(t, reconcile.Input{})
		calls := w.calls.reset()
		if err != nil || !rep.Converged || !slices.Equal(writes(calls), []string{"PUT " + pStrategy}) {
			t.Fatalf("edit: err=%v converged=%t writes=%v", err, rep.Converged, writes(calls))
		}
		// 7 reads to plan, 1 write, and to confirm: the list, new-checkout, segments.
		if len(calls) != 7+1+3 {
			t.Errorf("one-strategy edit: %d calls, want 11: %v", len(calls), calls)
		}
		t.Logf("one-strategy edit: %d calls (%d reads, 1 write)", len(calls), reads(calls))
		if got := strategyIDs(t, w.s, "new-checkout", "production")[1]; got != gradualID {
			t.Errorf("strategy id %s after the edit, was %s", got, gradualID)
		}
		w.noWrites(t)
	})

	t.Run("constraint", func(t *testing.T) {
		w.edit(t, "checkout/new-checkout.yaml", "values: [web, ios]", "values: [web, ios, android]")
		w.syncExpect(t, "PUT "+pStrategy)
	})

	t.Run("segment", func(t *testing.T) {
		w.edit(t, "flagsync.yaml", "segments: [beta-testers]", "segments: [beta-testers, internal]")
		w.edit(t, "checkout/new-checkout.yaml", "segments: [beta-testers]", "segments: [beta-testers, internal]")
		w.syncExpect(t, "PUT "+pStrategy)
	})

	t.Run("variant: fix weight, variable ones recomputed by Unleash", func(t *testing.T) {
		w.edit(t, "checkout/express-payment.yaml", "weight: 300", "weight: 400")
		w.syncExpect(t, "PUT "+pStrategy)
		var f struct {
			Environments []struct {
				Name       string
				Strategies []struct {
					Variants []struct {
						Name   string
						Weight int
					}
				}
			}
		}
		w.s.Call(t, http.MethodGet, "/api/admin/projects/default/features/express-payment", nil).Want(t, http.StatusOK).Decode(t, &f)
		got := map[string]int{}
		for _, e := range f.Environments {
			if e.Name == "production" {
				for _, v := range e.Strategies[0].Variants {
					got[v.Name] = v.Weight
				}
			}
		}
		if got["apple-pay"] != 400 || got["google-pay"] != 300 || got["card-only"] != 300 {
			t.Errorf("weights = %v", got)
		}
	})

	t.Run("environment toggle", func(t *testing.T) {
		w.edit(t, "dark-mode.yaml", "  production:\n    enabled: false", "  production:\n    enabled: true")
		w.syncExpect(t, "POST "+pOn)
		w.edit(t, "dark-mode.yaml", "  development:\n    enabled: true", "  development:\n    enabled: false")
		w.syncExpect(t, "POST "+pOff)
	})

	t.Run("tags", func(t *testing.T) {
		w.edit(t, "dark-mode.yaml", "tags: [simple:team-web]", "tags: [simple:ui, simple:Team Web]")
		w.syncExpect(t, "PUT "+pTags)
	})

	t.Run("untitled strategy changed in place", func(t *testing.T) {
		before := strategyIDs(t, w.s, "dark-mode", "development")
		w.edit(t, "dark-mode.yaml", "      - {name: default}", "      - {name: flexibleRollout, parameters: {rollout: 50}}")
		w.syncExpect(t, "PUT "+pStrategy)
		if after := strategyIDs(t, w.s, "dark-mode", "development"); !slices.Equal(after, before) {
			t.Errorf("ids %v, were %v", after, before)
		}
	})

	t.Run("strategies added, removed, reordered", func(t *testing.T) {
		w.edit(t, "checkout/new-checkout.yaml", `      - name: flexibleRollout
        title: beta testers
        parameters: {rollout: 100, stickiness: userId}
        segments: [beta-testers, internal]
`, `      - {name: default, title: staff, constraints: [{contextName: userId, operator: IN, values: [alice]}]}
`)
		w.syncExpect(t, "POST "+pStrats, "DELETE "+pStrategy)
		ids := strategyIDs(t, w.s, "new-checkout", "production")
		if len(ids) != 2 || ids[1] != gradualID {
			t.Fatalf("production strategies %v; want staff, then gradual %s", ids, gradualID)
		}
		// Swap them: gradual first.
		f := string(w.fsys["flags/checkout/new-checkout.yaml"].Data)
		staff := "      - {name: default, title: staff, constraints: [{contextName: userId, operator: IN, values: [alice]}]}\n"
		f = strings.Replace(f, staff, "", 1) + staff
		w.write("checkout/new-checkout.yaml", f)
		w.syncExpect(t, "POST "+pSortOrder)
		if got := strategyIDs(t, w.s, "new-checkout", "production"); got[0] != gradualID || got[1] != ids[0] {
			t.Errorf("order after the swap %v; want %s, %s", got, gradualID, ids[0])
		}
	})

	t.Run("changed in Unleash: an owned field is repaired", func(t *testing.T) {
		path := "/api/admin/projects/default/features/new-checkout/environments/production/strategies/" + gradualID
		w.s.Call(t, http.MethodPatch, path, []map[string]any{{"op": "replace", "path": "/parameters/rollout", "value": "90"}}).Want(t, http.StatusOK)
		w.s.Call(t, http.MethodPost, "/api/admin/projects/default/features/express-payment/environments/development/strategies",
			map[string]any{"name": "default", "title": "added in the UI"}).Want(t, http.StatusOK)
		w.s.Call(t, http.MethodPatch, "/api/admin/projects/default/features/dark-mode", []map[string]any{
			{"op": "replace", "path": "/description", "value": "edited in the UI"}}).Want(t, http.StatusOK)
		w.syncExpect(t, "PUT "+pStrategy, "DELETE "+pStrategy, "PATCH "+pFeature)
	})

	t.Run("changed in Unleash: an ignored field and an unmanaged flag are left alone", func(t *testing.T) {
		w.s.Call(t, http.MethodPost, "/api/admin/projects/default/features/maintenance-banner/environments/production/on", nil).Want(t, http.StatusOK)
		w.s.Call(t, http.MethodPost, "/api/admin/projects/default/features", map[string]any{"name": "made-in-the-ui"}).Want(t, http.StatusCreated)
		w.s.Call(t, http.MethodPost, "/api/admin/projects/default/features/made-in-the-ui/environments/development/strategies",
			map[string]any{"name": "default"}).Want(t, http.StatusOK)
		// Feature (environment) variants, deprecated, are not in flag files: left alone.
		w.s.Call(t, http.MethodPut, "/api/admin/projects/default/features/maintenance-banner/variants-batch", map[string]any{
			"environments": []string{"development"},
			"variants":     []map[string]any{{"name": "legacy", "weight": 1000, "weightType": "variable", "stickiness": "default"}},
		}).Want(t, http.StatusOK)
		rep := w.noWrites(t)
		if len(rep.Plan.Notes) != 2 || rep.Plan.Notes[0].Path != "environments.development.variants" || rep.Plan.Notes[0].Kind != unleashplan.NoteLegacyVariants ||
			rep.Plan.Notes[1].Path != "environments.production.enabled" || rep.Plan.Notes[1].Kind != plan.NoteIgnored {
			t.Errorf("notes = %+v", rep.Plan.Notes)
		}
		if len(rep.Plan.Unmanaged) != 1 || rep.Plan.Unmanaged[0].Key != "made-in-the-ui" {
			t.Errorf("unmanaged = %+v", rep.Plan.Unmanaged)
		}
	})

	t.Run("archive and revive", func(t *testing.T) {
		w.edit(t, "dark-mode.yaml", "name: dark-mode\n", "name: dark-mode\narchived: true\n")
		w.syncExpect(t, "DELETE "+pFeature)
		w.edit(t, "dark-mode.yaml", "name: dark-mode\narchived: true\n", "name: dark-mode\n")
		// Unleash shows an archived flag's strategies only once revived: this sync
		// revives it and reports what is left; the next one turns production on again.
		rep, err := w.run(t, reconcile.Input{})
		calls := w.calls.reset()
		if err != nil || !slices.Equal(writes(calls), []string{"POST " + pRevive}) {
			t.Fatalf("revive: err=%v writes=%v", err, writes(calls))
		}
		if rep.Converged || len(rep.Remaining) != 1 || rep.Remaining[0].Request.Path != "/api/admin/projects/default/features/dark-mode/environments/production/on" {
			t.Errorf("after revive: converged=%t remaining=%+v", rep.Converged, rep.Remaining)
		}
		w.syncExpect(t, "POST "+pOn)
	})

	partial := func(t *testing.T) {
		w.edit(t, "checkout/new-checkout.yaml", "rollout: 40,", "rollout: 45,")
		w.edit(t, "dark-mode.yaml", "rollout: 10", "rollout: 15")
		rep, err := w.run(t, reconcile.Input{Only: []plan.Address{unleashplan.AddressOf(refOf("new-checkout"), "")}})
		calls := w.calls.reset()
		if err != nil || !rep.Converged || !slices.Equal(writes(calls), []string{"PUT " + pStrategy}) {
			t.Fatalf("partial: err=%v converged=%t writes=%v", err, rep.Converged, writes(calls))
		}
		// Plan: the list and new-checkout (which uses no segment any more); confirm: the
		// same.
		if reads(calls) != 4 {
			t.Errorf("partial run read with %d calls, want 4: %v", reads(calls), calls)
		}
		w.syncExpect(t, "PUT "+pStrategy) // dark-mode, left by the partial run
	}
	if w.bin == nil { // the binary's partial runs are the daemon's: TestDaemonSyncsUnleashFlags
		t.Run("partial run reads the named flag only", partial)
	}

	t.Run("prune archives owned flags removed from Git, never others", func(t *testing.T) {
		delete(w.fsys, "flags/internal-tools.yaml")
		rep, err := w.run(t, reconcile.Input{})
		if err != nil || len(rep.Plan.Changes) != 0 || len(writes(w.calls.reset())) != 0 {
			t.Fatalf("prune off: err=%v changes=%d", err, len(rep.Plan.Changes))
		}
		if len(rep.Plan.Unmanaged) != 2 {
			t.Errorf("prune off: unmanaged %+v, want internal-tools and made-in-the-ui", rep.Plan.Unmanaged)
		}
		w.edit(t, "flagsync.yaml", "prune: false", "prune: true")
		rep = w.syncExpect(t, "DELETE "+pFeature)
		if len(rep.Plan.Unmanaged) != 1 || rep.Plan.Unmanaged[0].Key != "made-in-the-ui" {
			t.Errorf("prune: unmanaged %+v", rep.Plan.Unmanaged)
		}
	})

	t.Run("plan-time refusal: an unknown segment writes nothing", func(t *testing.T) {
		good := w.fsys["flags/flagsync.yaml"]
		w.edit(t, "flagsync.yaml", "segments: [beta-testers, internal]\n", "")
		w.edit(t, "checkout/express-payment.yaml", "title: half of users\n", "title: half of users\n        segments: [no-such-segment]\n")
		rep, err := w.run(t, reconcile.Input{})
		calls := w.calls.reset()
		var refused *unleashplan.RefusedError
		if err == nil || !strings.Contains(err.Error(), "Git asks for what Unleash does not have") || (w.bin == nil && !errors.As(err, &refused)) ||
			len(writes(calls)) != 0 || len(rep.Plan.Changes) != 1 {
			t.Fatalf("err=%v writes=%v changes=%d", err, writes(calls), len(rep.Plan.Changes))
		}
		w.fsys["flags/flagsync.yaml"] = good
		w.edit(t, "checkout/express-payment.yaml", "        segments: [no-such-segment]\n", "")
		w.noWrites(t)
	})

	t.Run("export: a zero-change round trip", func(t *testing.T) {
		if w.bin != nil {
			w.bin.exportRoundTrip(t, w)
			return
		}
		exportRoundTrip(t, w)
	})

	t.Run("call counts with more flags: only flags with strategies cost a read", func(t *testing.T) {
		for i := range 40 {
			body := fmt.Sprintf("name: bulk-%02d\ndescription: generated\n", i)
			if i%2 == 0 {
				body += "environments:\n  production:\n    enabled: true\n    strategies:\n      - {name: flexibleRollout, parameters: {rollout: 5}}\n"
			}
			w.write(fmt.Sprintf("bulk/bulk-%02d.yaml", i), body)
		}
		rep, err := w.run(t, reconcile.Input{})
		calls := w.calls.reset()
		if err != nil || !rep.Converged {
			t.Fatalf("sync of 40 more flags: err=%v converged=%t", err, rep.Converged)
		}
		t.Logf("first sync of 40 more flags (20 with a strategy): %d calls (%d reads, %d writes)", len(calls), reads(calls), len(writes(calls)))
		w.noWrites(t)
		rep, _ = w.run(t, reconcile.Input{})
		calls = w.calls.reset()
		// The list and the 24 flags with strategies (4 of the example's 5, now that
		// internal-tools is gone, and 20 new); no strategy uses a segment any more, so
		// the segment list is not read.
		if len(calls) != 1+24 || len(writes(calls)) != 0 || len(rep.Plan.Unmanaged) != 1 {
			t.Errorf("full read: %d calls, want 25: %v", len(calls), calls)
		}
		t.Logf("full read, 44 flags in Git (24 with strategies) and 1 unmanaged: %d calls", len(calls))
	})
}

func refOf(name string) unleashmodel.Ref { return unleashmodel.Ref{Project: "default", Name: name} }

// TestClientAgainstServer checks the client's reading of the real server's refusals (it
// creates no flag, so the project TestEndToEnd syncs is not disturbed).
func TestClientAgainstServer(t *testing.T) {
	s := unleashtest.Start(t)
	c, err := unleashclient.New(unleashclient.Config{BaseURL: s.BaseURL, Token: s.AdminToken})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Do(ctx, api.Request{Method: http.MethodPost, Path: "/api/admin/projects/default/features", Body: []byte(`{"type":"release"}`)})
	body, ok := unleashclient.AsErrorBody(err)
	if !ok || body.Name != "BadDataError" || body.Details[0].Path != "/body/name" || !api.HasStatus(err, http.StatusBadRequest) {
		t.Errorf("create without a name: %v (body %+v)", err, body)
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "/body/name") {
		t.Errorf("the error does not say what was invalid: %v", err)
	}
	if _, err := c.GetFeature(ctx, "default", s.UniqueName("nosuch")); !api.IsNotFound(err) {
		t.Errorf("missing flag: %v, want a 404", err)
	}
	bad, err := unleashclient.New(unleashclient.Config{BaseURL: s.BaseURL, Token: "*:*.not-a-token"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.ListFeatures(ctx, "default")
	if b, ok := unleashclient.AsErrorBody(err); !api.HasStatus(err, http.StatusUnauthorized) || !ok || b.Name != "UnauthorizedError" || strings.Contains(err.Error(), "not-a-token") {
		t.Errorf("unknown token: %v", err)
	}
}
