package apply

import (
	"context"
	"fmt"
	"testing"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
)

const site = "applysite1"

func sandboxClient(t *testing.T) (*ksandbox.Server, *kclient.Client) {
	t.Helper()
	sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1})
	c, err := kclient.New(kclient.Config{BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	return sb, c
}

func desiredFlags(n int, prodOn bool) *kmodel.Desired {
	d := &kmodel.Desired{Revision: "rev", Settings: kmodel.Settings{SiteCode: site}}
	for i := range n {
		d.Flags = append(d.Flags, kmodel.Flag{
			SiteCode: site, FeatureKey: fmt.Sprintf("f%d", i), Name: fmt.Sprintf("Flag %d", i),
			Variations: []kmodel.Variation{{Key: "off", Name: "Off"}, {Key: "on", Name: "On"}},
			Environments: map[string]kmodel.Environment{
				"development": {FeatureEnabled: true, DefaultVariationKey: "on"},
				"production":  {FeatureEnabled: prodOn, DefaultVariationKey: "off"},
			},
		})
	}
	return d
}

func TestPlanAgainstTheSandbox(t *testing.T) {
	sb, c := sandboxClient(t)
	ctx := context.Background()

	p, err := kplan.Compute(desiredFlags(6, false), nil, kplan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := Plan(ctx, c, p, Options{Concurrency: 3})
	if out.Summary != (Summary{Applied: 6}) {
		t.Fatalf("creates: %+v", out.Summary)
	}
	if sb.Writes() != 6 {
		t.Errorf("sandbox saw %d writes, want 6", sb.Writes())
	}

	// The same creates again: every flag exists, so each 409 counts as already applied.
	again := Plan(ctx, c, p, Options{Concurrency: 3})
	for _, r := range again.Results {
		if r.Status != Applied || r.Note != NoteAlreadyExists {
			t.Errorf("repeated create of %s: %s %q (%v), want applied with the already-exists note", r.Change.Key, r.Status, r.Note, r.Err)
		}
	}

	// Environment patches land, and a dry run of the same plan sends nothing.
	live, err := c.ListFlags(ctx, site)
	if err != nil {
		t.Fatal(err)
	}
	p, err = kplan.Compute(desiredFlags(6, true), live, kplan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := sb.Writes()
	if dry := Plan(ctx, c, p, Options{DryRun: true}); dry.Summary != (Summary{Skipped: 6}) || sb.Writes() != before {
		t.Errorf("dry run: %+v, %d writes", dry.Summary, sb.Writes()-before)
	}
	if out := Plan(ctx, c, p, Options{}); out.Summary != (Summary{Applied: 6}) {
		t.Errorf("patches: %+v", out.Summary)
	}
	live, err = c.ListFlags(ctx, site)
	if err != nil {
		t.Fatal(err)
	}
	if rest, _ := kplan.Compute(desiredFlags(6, true), live, kplan.Options{}); len(rest.Changes) != 0 {
		t.Errorf("%d changes remain after applying", len(rest.Changes))
	}
}
