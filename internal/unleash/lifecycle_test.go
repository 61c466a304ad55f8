package unleash_test

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/lifecycle"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/unleash"
	unleashwire "github.com/flagsync/flagsync/internal/unleash/wire"
)

const ownedFlag = `name: owned
owner: team-web
expires: 2026-06-30
permanent: true
environments:
  development:
    enabled: true
    strategies: [{name: default}]
`

// TestMetadataIsNeverSent: owner, expires and permanent load, are in what policies read
// and in the lifecycle, and no planned request carries them.
func TestMetadataIsNeverSent(t *testing.T) {
	fsys := fstest.MapFS{
		"flags/flagsync.yaml": {Data: []byte("vendor: unleash\nproject: default\nenvironments: [development, production]\n")},
		"flags/owned.yaml":    {Data: []byte(ownedFlag)},
	}
	repo, err := unleash.Vendor(nil).Load(reconcile.Source{FS: fsys, Dir: "flags"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := repo.Plan(reconcile.PlanOptions{})
	if err != nil || len(p.Changes) == 0 {
		t.Fatalf("plan: %v, %d changes", err, len(p.Changes))
	}
	for _, c := range p.Changes {
		for _, word := range []string{"owner", "expires", "permanent", "team-web", "2026-06-30"} {
			if strings.Contains(string(c.Request.Body), word) {
				t.Errorf("%s %s sends %q: %s", c.Request.Method, c.Request.Path, word, c.Request.Body)
			}
		}
	}
	docs := repo.(reconcile.PolicyRepo).PolicyDocuments([]plan.Address{p.Changes[0].Flag()})
	if d := docs[0]; d.Flag["owner"] != "team-web" || d.Flag["expires"] != "2026-06-30" || d.Flag["permanent"] != true || d.Live != nil ||
		d.File != "flags/owned.yaml" || d.Line != 1 {
		t.Errorf("policy document %+v", d)
	}
	flags := repo.(lifecycle.Reader).Lifecycle()
	if len(flags) != 1 || flags[0].Owner != "team-web" || !flags[0].Permanent || flags[0].Live {
		t.Errorf("lifecycle %+v", flags)
	}
}

// TestListedFlagsCarryTheirLife: the project's list gives each flag's createdAt and stale
// mark.
func TestListedFlagsCarryTheirLife(t *testing.T) {
	var lf unleashwire.ListedFeature
	if err := json.Unmarshal([]byte(`{"name": "a", "createdAt": "2025-01-02T03:04:05.000Z", "stale": true, "environments": []}`), &lf); err != nil {
		t.Fatal(err)
	}
	f := unleashwire.FlagFromList("default", lf)
	if f.CreatedAt != "2025-01-02T03:04:05.000Z" || !f.Stale {
		t.Errorf("flag %+v", f)
	}
}
