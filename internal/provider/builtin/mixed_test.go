package builtin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/kameleoon"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/prcomment"
	"github.com/flagsync/flagsync/internal/provider/builtin"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/split"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
	splitsandboxtest "github.com/flagsync/flagsync/internal/split/sandbox/sandboxtest"
)

// This file tests the pipeline with both real vendors at once: the registration is the
// one place that imports both, so neither vendor's tests import the other and the core's
// tests need neither.

// ws is the Split workspace of the mixed repository.
const ws = "ws-1"

const darkMode = `name: dark_mode
environments:
  Production:
    treatments: [{name: dark}, {name: light}]
    defaultTreatment: light
`

// splitWorld is a Split sandbox and a client for it.
type splitWorld struct {
	sb     *splitsandbox.Server
	client *splitclient.Client
}

func newSplitWorld(t *testing.T) *splitWorld {
	t.Helper()
	sb, ts := splitsandboxtest.NewTestServer(t, splitsandbox.Options{RatePerSecond: -1, RatePerMinute: -1,
		Environments: []string{"Staging", "Production"}})
	c, err := splitclient.New(splitclient.Config{BaseURL: ts.URL, APIKey: splitsandbox.DefaultAPIKey, Budget: splitclient.NewBudget(1000, 100000)})
	if err != nil {
		t.Fatal(err)
	}
	return &splitWorld{sb: sb, client: c}
}

func render(p plan.Plan) string {
	var b strings.Builder
	_ = plan.RenderText(&b, p, plan.TextOptions{})
	return b.String()
}

// TestMixedRepository syncs a Kameleoon repository that holds one Split flag file: each
// service loads its own files, one plan shows both, each client gets its own writes.
func TestMixedRepository(t *testing.T) {
	w := newSplitWorld(t)
	ksb, kts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1})
	kc, err := kclient.New(kclient.Config{BaseURL: kts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"flags/flagsync.yaml": {Data: []byte("siteCode: pzllysfw2f\nenvironments: [development, production]\n")},
		"flags/banner.yaml": {Data: []byte(`featureKey: banner
name: Banner
variations: [{key: "off"}, {key: "on"}]
environments:
  production: {featureEnabled: true, defaultVariationKey: "on"}
`)},
		"flags/split/dark_mode.yaml": {Data: []byte("vendor: split\nworkspace: " + ws + "\ntrafficType: user\n" + darkMode)},
	}
	in := reconcile.Input{Revision: "r", FS: fsys, Dir: "flags",
		Vendors: []reconcile.Vendor{split.Vendor(w.client), kameleoon.Vendor(kc)}}
	rep, err := reconcile.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Converged || rep.Summary.Applied != 3 || ksb.Writes() != 1 || w.sb.Writes() != 2 {
		t.Fatalf("mixed: converged=%t summary=%+v kameleoon writes=%d split writes=%d\n%s", rep.Converged, rep.Summary, ksb.Writes(), w.sb.Writes(), render(rep.Plan))
	}
	if rep.Plan.Service != "Split and Kameleoon" || rep.Plan.Changes[2].Order != 3 {
		t.Errorf("service %q, orders %v", rep.Plan.Service, rep.Plan.Changes)
	}
	rep, err = reconcile.Run(context.Background(), in)
	if err != nil || len(rep.Plan.Changes) != 0 {
		t.Errorf("second mixed run: err=%v changes=%d", err, len(rep.Plan.Changes))
	}
	// A Split file without vendor: split is the Kameleoon loader's, which rejects it.
	fsys["flags/split/dark_mode.yaml"] = &fstest.MapFile{Data: []byte("workspace: " + ws + "\n" + darkMode)}
	_, err = reconcile.Run(context.Background(), in)
	var invalid *diag.InvalidError
	if !errors.As(err, &invalid) {
		t.Errorf("err = %v, want the Kameleoon loader's diagnostics", err)
	}
}

// TestLocateFlagsOfTheBuiltinVendors finds a Kameleoon flag's file and line through the
// registry's file vendors, as flagsync comment does.
func TestLocateFlagsOfTheBuiltinVendors(t *testing.T) {
	fsys := fstest.MapFS{
		"flags/flagsync.yaml": {Data: []byte("siteCode: pzllysfw2f\nenvironments: [production]\n")},
		"flags/a.yaml": {Data: []byte("# a comment\nfeatureKey: dark_mode\nname: Dark mode\nvariations:\n  - key: off\n  - key: on\n" +
			"environments:\n  production:\n    featureEnabled: true\n    defaultVariationKey: on\n")},
	}
	got, err := prcomment.LocateFlags(builtin.Registry().FileVendors(), fsys, "flags")
	if err != nil {
		t.Fatal(err)
	}
	src, ok := got[plan.Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "dark_mode"}]
	if !ok || src.File != "flags/a.yaml" || src.Line != 2 {
		t.Fatalf("located %+v: want dark_mode at flags/a.yaml:2", got)
	}
}

// TestRegistry: Kameleoon, whose files name no vendor, is the default and comes first;
// Split second, Unleash third.
func TestRegistry(t *testing.T) {
	r := builtin.Registry()
	if got := strings.Join(r.Names(), ","); got != "kameleoon,split,unleash" || r.Default().Name() != "kameleoon" {
		t.Errorf("names %s, default %s", got, r.Default().Name())
	}
	// The sync summary names the automation of the services whose differences it left
	// alone.
	if got := r.Automation([]string{"Kameleoon"}); got != "Kameleoon's automation" {
		t.Errorf("automation of Kameleoon: %q", got)
	}
	if got := r.Automation([]string{"Kameleoon", "Split"}); got != "Kameleoon's automation or Split's automation" {
		t.Errorf("automation of both: %q", got)
	}
}
