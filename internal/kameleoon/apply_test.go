package kameleoon_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/flagsync/flagsync/internal/apply"
	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
)

// applySite is the site of the apply tests.
const applySite = "applysite1"

func applySandboxClient(t *testing.T) (*ksandbox.Server, *kclient.Client) {
	t.Helper()
	sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1})
	c, err := kclient.New(kclient.Config{BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	return sb, c
}

func applyDesired(n int, prodOn bool) *kmodel.Desired {
	d := &kmodel.Desired{Revision: "rev", Settings: kmodel.Settings{SiteCode: applySite}}
	for i := range n {
		d.Flags = append(d.Flags, kmodel.Flag{
			SiteCode: applySite, FeatureKey: fmt.Sprintf("f%d", i), Name: fmt.Sprintf("Flag %d", i),
			Variations: []kmodel.Variation{{Key: "off", Name: "Off"}, {Key: "on", Name: "On"}},
			Environments: map[string]kmodel.Environment{
				"development": {FeatureEnabled: true, DefaultVariationKey: "on"},
				"production":  {FeatureEnabled: prodOn, DefaultVariationKey: "off"},
			},
		})
	}
	return d
}

func TestApplyAgainstTheSandbox(t *testing.T) {
	sb, c := applySandboxClient(t)
	ctx := context.Background()

	p, err := kplan.Compute(applyDesired(6, false), nil, kplan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := apply.Plan(ctx, c, p, apply.Options{Concurrency: 3})
	if out.Summary != (apply.Summary{Applied: 6}) {
		t.Fatalf("creates: %+v", out.Summary)
	}
	if sb.Writes() != 6 {
		t.Errorf("sandbox saw %d writes, want 6", sb.Writes())
	}

	// The same creates again: every flag exists, so each 409 counts as already applied.
	again := apply.Plan(ctx, c, p, apply.Options{Concurrency: 3})
	for _, r := range again.Results {
		if r.Status != apply.Applied || r.Note != apply.NoteAlreadyExists {
			t.Errorf("repeated create of %s: %s %q (%v), want applied with the already-exists note", r.Change.Key, r.Status, r.Note, r.Err)
		}
	}

	// Environment patches land, and a dry run of the same plan sends nothing.
	live, err := c.ListFlags(ctx, applySite)
	if err != nil {
		t.Fatal(err)
	}
	p, err = kplan.Compute(applyDesired(6, true), live, kplan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := sb.Writes()
	if dry := apply.Plan(ctx, c, p, apply.Options{DryRun: true}); dry.Summary != (apply.Summary{Skipped: 6}) || sb.Writes() != before {
		t.Errorf("dry run: %+v, %d writes", dry.Summary, sb.Writes()-before)
	}
	if out := apply.Plan(ctx, c, p, apply.Options{}); out.Summary != (apply.Summary{Applied: 6}) {
		t.Errorf("patches: %+v", out.Summary)
	}
	live, err = c.ListFlags(ctx, applySite)
	if err != nil {
		t.Fatal(err)
	}
	if rest, _ := kplan.Compute(applyDesired(6, true), live, kplan.Options{}); len(rest.Changes) != 0 {
		t.Errorf("%d changes remain after applying", len(rest.Changes))
	}
}
