package split_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/lifecycle"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/split"
)

const ownedFlag = `name: owned
owner: team-web
expires: 2026-06-30
permanent: false
environments:
  Staging:
    treatments: [{name: "on"}, {name: "off"}]
    defaultTreatment: "on"
  Production:
    treatments: [{name: "on"}, {name: "off"}]
    defaultTreatment: "off"
    killed: true
`

const ownerPolicy = `policies:
  - name: owner
    message: every flag names an owner
    expr: change.action == "archive" || flag.?owner.orValue("") != ""
`

// TestMetadataIsNeverSent: owner, expires and permanent load, are never in a request
// body, and are no difference to plan; a deny policy refuses the flag without an owner
// while the other is created; the lifecycle reads the flag's dates from its definitions.
func TestMetadataIsNeverSent(t *testing.T) {
	w := newWorld(t)
	fsys := fstest.MapFS{
		"flags/flagsync.yaml":     {Data: []byte(settings + ownerPolicy)},
		"flags/owned.yaml":        {Data: []byte(ownedFlag)},
		"flags/ui/dark_mode.yaml": {Data: []byte(darkMode)},
	}
	rep, err := w.run(t, fsys, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Plan.Changes {
		for _, word := range []string{"owner", "expires", "permanent", "team-web", "2026-06-30"} {
			if strings.Contains(string(c.Request.Body), word) {
				t.Errorf("%s %s sends %q: %s", c.Request.Method, c.Request.Path, word, c.Request.Body)
			}
		}
		if c.Key != "owned" {
			t.Errorf("change of %s applied, want only owned's", c.Key)
		}
	}
	// dark_mode's create and its definition's are refused, each by the policy.
	if rep.Summary.Applied != 3 || len(rep.Refused) != 2 || rep.Refused[0].Key != "dark_mode" || rep.Refused[0].Kind != plan.BlockedPolicy ||
		rep.Refused[0].File != "flags/ui/dark_mode.yaml" || rep.Refused[0].Action != plan.ActionCreate ||
		rep.Refused[1].Environment != "Production" || rep.Refused[1].Reason != "owner: every flag names an owner" {
		t.Fatalf("applied %d, refused %#v", rep.Summary.Applied, rep.Refused)
	}
	for _, c := range rep.Remaining {
		if c.Key != "dark_mode" {
			t.Errorf("remaining %+v", c)
		}
	}
	if rep.Converged {
		t.Error("converged with refused changes")
	}

	// Nothing left to do for owned: its metadata is not a difference.
	delete(fsys, "flags/ui/dark_mode.yaml")
	rep, err = w.run(t, fsys, true)
	if err != nil || len(rep.Plan.Changes) != 0 {
		t.Fatalf("second plan: %v, %d changes", err, len(rep.Plan.Changes))
	}

	l, err := reconcile.Load([]reconcile.Vendor{split.Vendor(w.client)}, reconcile.Source{FS: fsys, Dir: "flags"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Parts[0].Repo.Read(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	flags := lifecycle.Collect(l)
	if len(flags) != 1 {
		t.Fatalf("%d flags", len(flags))
	}
	f := flags[0]
	if f.Owner != "team-web" || f.Expires != "2026-06-30" || f.Permanent || !f.Live || f.Created.IsZero() || f.File != "flags/owned.yaml" {
		t.Errorf("lifecycle %+v", f)
	}
	serving := map[string]lifecycle.Serving{}
	for _, e := range f.Environments {
		serving[e.Name] = e.Serving
		if e.Since.IsZero() {
			t.Errorf("%s: no lastUpdateTime", e.Name)
		}
	}
	if serving["Staging"] != lifecycle.On || serving["Production"] != lifecycle.Off {
		t.Errorf("serving %v", serving)
	}
}
