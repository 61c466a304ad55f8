package kameleoon

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/policy"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// TestFlagDocIsPlain: the hand-written conversion policies read flags through gives what
// policy.Plain gives through the model's JSON encoding, for the example repository's
// flags and for every live flag of the planner's golden cases.
func TestFlagDocIsPlain(t *testing.T) {
	desired, err := kload.Load(os.DirFS("../../examples"), "flags")
	if err != nil {
		t.Fatal(err)
	}
	flags := desired.Flags
	lives, err := filepath.Glob("plan/testdata/*/live.json")
	if err != nil || len(lives) < 20 {
		t.Fatalf("%d live.json files (%v)", len(lives), err)
	}
	for _, p := range lives {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		live, err := kclient.DecodeFlags(b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		flags = append(flags, live...)
	}
	owned := flags[0]
	owned.Owner, owned.Expires, owned.Permanent, owned.Archived = "team-web", "2026-06-30", true, true
	third := 12.5
	owned.Environments = map[string]kmodel.Environment{"production": {RolloutRules: []kmodel.Rule{{Name: "r", Type: "EXPERIMENTATION", Exposition: &third,
		TrafficAllocations: []kmodel.TrafficAllocation{{VariationKey: "on", Exposition: 33.33}}}}},
		"staging": {Integrations: &kmodel.Integrations{DeliveryRules: []any{map[string]any{"a": 1.0, "b": []any{"x", nil}}}}}}
	flags = append(flags, owned)
	for i := range flags {
		want, err := policy.Plain(&flags[i])
		if err != nil {
			t.Fatal(err)
		}
		if got := policy.Resolve(flagDoc(&flags[i])); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n flagDoc %#v\n   Plain %#v", flags[i].Ref(), got, want)
		}
	}
}

// TestMetadataIsNeverSent: owner, expires and permanent reach no request body when the
// flags are created and changed in the sandbox, and are no difference to plan; policies
// read them.
func TestMetadataIsNeverSent(t *testing.T) {
	sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1})
	var calls atomic.Int64
	c, err := kclient.New(kclient.Config{BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret,
		Observer: func(api.CallInfo) { calls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	meta := "owner: team-web\nexpires: 2026-06-30\npermanent: true\n"
	fsys := fstest.MapFS{
		"flags/flagsync.yaml": {Data: []byte("siteCode: " + siteA + "\nenvironments: [development, production]\n" +
			"policies:\n  - name: owned\n    message: needs an owner\n    expr: flag.owner == \"team-web\" && flag.expires == \"2026-06-30\" && flag.permanent == true\n")},
		"flags/alpha.yaml": {Data: []byte(strings.Replace(flagYAML("alpha", "", true), "name: Flag alpha\n", "name: Flag alpha\n"+meta, 1))},
	}
	run := func() *reconcile.Report {
		t.Helper()
		rep, err := reconcile.Run(context.Background(), reconcile.Input{FS: fsys, Dir: "flags", Vendors: []reconcile.Vendor{Vendor(c)}})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := run(); !rep.Converged || rep.Summary.Applied != 1 {
		t.Fatalf("create: converged %v, %+v, refused %+v", rep.Converged, rep.Summary, rep.Refused)
	}
	fsys["flags/alpha.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(string(fsys["flags/alpha.yaml"].Data), "name: Flag alpha", "name: Alpha", 1))}
	if rep := run(); !rep.Converged || rep.Summary.Applied != 1 {
		t.Fatalf("update: converged %v, %+v", rep.Converged, rep.Summary)
	}
	if rep := run(); len(rep.Plan.Changes) != 0 {
		t.Fatalf("the metadata is a difference: %+v", rep.Plan.Changes)
	}
	writes := 0
	for _, call := range sb.Calls() {
		if len(call.Body) > 0 && call.Method != "GET" {
			writes++
		}
		for _, word := range []string{"owner", "expires", "permanent", "team-web", "2026-06-30"} {
			if strings.Contains(string(call.Body), word) {
				t.Errorf("%s %s sent %q: %s", call.Method, call.Path, word, call.Body)
			}
		}
	}
	if writes < 3 { // the token, the create, the patch
		t.Errorf("%d calls with a body: the test saw no write", writes)
	}
}
