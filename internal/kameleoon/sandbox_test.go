package kameleoon

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

func TestRunAgainstTheSandbox(t *testing.T) {
	sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1})
	var calls atomic.Int64
	c, err := kclient.New(kclient.Config{BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret,
		Observer: func(api.CallInfo) { calls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := func(fsys fstest.MapFS) reconcile.Input {
		return reconcile.Input{Revision: "r", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}, Calls: calls.Load}
	}
	fsys := repo()

	rep, err := reconcile.Run(ctx, in(fsys))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Verified || !rep.Converged || rep.Summary.Applied != 3 || sb.Writes() != 3 {
		t.Fatalf("first run: verified=%t converged=%t summary=%+v writes=%d", rep.Verified, rep.Converged, rep.Summary, sb.Writes())
	}
	// token, one list per site, three creates, each confirmed by its answer
	if rep.APICalls != 1+2+3 {
		t.Errorf("first run made %d API calls, want 6", rep.APICalls)
	}

	rep, err = reconcile.Run(ctx, in(fsys))
	if err != nil || !rep.Converged || sb.Writes() != 3 || rep.APICalls != 2 {
		t.Fatalf("second run: err=%v converged=%t writes=%d calls=%d, want no write and two lists", err, rep.Converged, sb.Writes()-3, rep.APICalls)
	}

	// A partial run reads and writes only the named flag, with a get instead of a list;
	// the patch's answer confirms it.
	fsys["flags/alpha.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(flagYAML("alpha", "", true), "name: Flag alpha", "name: Alpha renamed", 1))}
	fsys["flags/beta.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(flagYAML("beta", "", false), "name: Flag beta", "name: Beta renamed", 1))}
	sb.ResetCalls()
	partial := in(fsys)
	partial.Only = []plan.Address{{Service: "Kameleoon", Scope: siteA, Key: "alpha"}}
	rep, err = reconcile.Run(ctx, partial)
	if err != nil || !rep.Converged || rep.Summary.Applied != 1 {
		t.Fatalf("partial run: err=%v converged=%t summary=%+v", err, rep.Converged, rep.Summary)
	}
	var got []string
	for _, call := range sb.Calls() {
		got = append(got, call.Method+" "+call.Path)
	}
	want := []string{"GET " + kclient.FlagPath(siteA, "alpha"), "PATCH " + kclient.FlagPath(siteA, "alpha")}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("partial run calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// The full run that follows finds beta only.
	rep, err = reconcile.Run(ctx, in(fsys))
	if err != nil || len(rep.Plan.Changes) != 1 || rep.Plan.Changes[0].Key != "beta" || !rep.Converged {
		t.Fatalf("full run after the partial one: err=%v changes=%+v converged=%t", err, rep.Plan.Changes, rep.Converged)
	}
}

// TestRunRefusedVariationIsNotConverged: Git removes a variation that an environment it
// no longer lists still serves. The planner refuses that removal; the run applies every
// other change without a refused call, and reports itself not converged, with the
// refusal, on this run and the next (which writes nothing).
func TestRunRefusedVariationIsNotConverged(t *testing.T) {
	sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1})
	c, err := kclient.New(kclient.Config{BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fsys := repo()
	if rep, err := reconcile.Run(ctx, reconcile.Input{Revision: "r1", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}}); err != nil || !rep.Converged {
		t.Fatalf("first run: err=%v converged=%t", err, rep.Converged)
	}

	// alpha: renamed, development no longer listed (it serves "on"), "on" removed.
	fsys["flags/alpha.yaml"] = &fstest.MapFile{Data: []byte(`featureKey: alpha
name: Alpha renamed
variations:
  - {key: "off", name: Off}
environments:
  production:
    featureEnabled: true
    defaultVariationKey: "off"
`)}
	writes := sb.Writes()
	rep, err := reconcile.Run(ctx, reconcile.Input{Revision: "r2", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Failed != 0 || rep.Summary.Applied != 1 || sb.Writes() != writes+1 {
		t.Errorf("summary %+v, %d writes; want the rename applied and nothing refused by the API", rep.Summary, sb.Writes()-writes)
	}
	if !rep.Verified || len(rep.Remaining) != 0 || rep.Converged {
		t.Errorf("verified=%t remaining=%d converged=%t; want verified, nothing remaining, not converged", rep.Verified, len(rep.Remaining), rep.Converged)
	}
	if len(rep.Refused) != 1 || rep.Refused[0].Variation != "on" || rep.Refused[0].Key != "alpha" {
		t.Fatalf("refused = %+v, want the removal of alpha's variation on", rep.Refused)
	}
	if got, want := rep.NotConverged(), "1 change refused by the planner"; got != want {
		t.Errorf("NotConverged() = %q, want %q", got, want)
	}
	live, err := c.GetFlag(ctx, siteA, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	if live.Name != "Alpha renamed" || len(live.Variations) != 2 || live.Environments["development"].DefaultVariationKey != "on" {
		t.Errorf("live alpha: name %q, %d variations, development serves %q; want renamed, on kept and served",
			live.Name, len(live.Variations), live.Environments["development"].DefaultVariationKey)
	}

	// The next run has nothing to write and is still not converged.
	writes = sb.Writes()
	rep, err = reconcile.Run(ctx, reconcile.Input{Revision: "r2", FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}})
	if err != nil || len(rep.Plan.Changes) != 0 || sb.Writes() != writes {
		t.Fatalf("second run: err=%v changes=%d writes=%d", err, len(rep.Plan.Changes), sb.Writes()-writes)
	}
	if rep.Converged || len(rep.Refused) != 1 || rep.NotConverged() == "" {
		t.Errorf("second run: converged=%t refused=%+v; want not converged with the refusal", rep.Converged, rep.Refused)
	}
}
