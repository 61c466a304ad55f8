package kameleoon

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	kclient "github.com/flagsync/flagsync/internal/kameleoon/client"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	ksandboxtest "github.com/flagsync/flagsync/internal/kameleoon/sandbox/sandboxtest"
	"github.com/flagsync/flagsync/internal/lifecycle"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// lifecycleNow is the time of the lifecycle tests' report and of the sandbox's clock.
var lifecycleNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// daysAgo is the sandbox's date n days and an hour before lifecycleNow.
func daysAgo(n int) string {
	return lifecycleNow.Add(-time.Duration(n)*24*time.Hour - time.Hour).Format("2006-01-02T15:04:05")
}

// liveSeed is a flag as seeded in the sandbox, in the API's read shape: its health, its
// creation date, whether it is archived, and production's state and last change.
type liveSeed struct {
	key, health string
	created     int // days ago
	archived    bool
	production  string // JSON of production's configuration, without environmentKey and dateModified
	modified    int    // days since production last changed
}

// seed stores s in the sandbox's site.
func (s liveSeed) seed(t *testing.T, sb *ksandbox.Server, site string) {
	t.Helper()
	prod := s.production
	if prod == "" {
		prod = `"featureEnabled": true, "defaultVariationKey": "off", "rolloutRules": [{"name": "beta", "type": "TARGETED_DELIVERY", "segmentId": 7, "variationKey": "on", "status": "ACTIVE"}]`
	}
	raw := fmt.Sprintf(`{"featureKey": %q, "name": %q, "health": %q, "archived": %t, "dateCreated": %q,
	  "variations": [{"key": "off", "name": "Off", "variables": []}, {"key": "on", "name": "On", "variables": []}],
	  "environmentConfigurations": [{"environmentKey": "production", "dateModified": %q, %s}]}`,
		s.key, s.key, s.health, s.archived, daysAgo(s.created), daysAgo(s.modified), prod)
	if err := sb.SetFlagJSON(site, []byte(raw)); err != nil {
		t.Fatalf("seed %s: %v", s.key, err)
	}
}

// lifecycleFile is a flag file with the given metadata lines.
func lifecycleFile(key, site, meta string) string {
	return fmt.Sprintf("featureKey: %s\nsiteCode: %s\nname: Flag %s\n%svariations: [{key: \"off\"}, {key: \"on\"}]\n", key, site, key, meta)
}

// TestReportAgainstTheSandbox: flagsync report's figures for flags in every lifecycle
// state, read with one list call per site and no other (counted by the sandbox).
func TestReportAgainstTheSandbox(t *testing.T) {
	sb, ts := ksandboxtest.NewTestServer(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1, Now: func() time.Time { return lifecycleNow }})
	seeds := map[string][]liveSeed{
		siteA: {
			{key: "overdue", health: "HEALTHY", created: 400, modified: 3},
			{key: "stale", health: "STALE", created: 200, modified: 100},
			{key: "smelly", health: "SMELLY", created: 90, modified: 2},
			{key: "fully_on", health: "HEALTHY", created: 120, modified: 45, production: `"featureEnabled": true, "defaultVariationKey": "on", "rolloutRules": []`},
			{key: "ramped_on", health: "HEALTHY", created: 50, modified: 31,
				production: `"featureEnabled": true, "defaultVariationKey": "off", "rolloutRules": [{"name": "all", "type": "PROGRESSIVE_DELIVERY", "exposition": 100, "variationKey": "on", "status": "ACTIVE"}]`},
			{key: "recently_on", health: "HEALTHY", created: 50, modified: 29, production: `"featureEnabled": true, "defaultVariationKey": "on", "rolloutRules": []`},
		},
		siteB: {
			{key: "fully_off", health: "HEALTHY", created: 300, modified: 60, production: `"featureEnabled": false, "defaultVariationKey": "on", "rolloutRules": []`},
			{key: "archived_live", health: "HEALTHY", created: 30, modified: 1, archived: true},
			{key: "no_owner", health: "PERMANENT", created: 10, modified: 1},
			{key: "unmanaged", health: "STALE", created: 10, modified: 1}, // not in Git: not in the report
		},
	}
	for site, ss := range seeds {
		for _, s := range ss {
			s.seed(t, sb, site)
		}
	}
	owned := "owner: team-web\nexpires: 2027-01-01\n"
	fsys := fstest.MapFS{
		"flags/flagsync.yaml":    {Data: []byte("environments: [development, staging, production]\n")},
		"flags/overdue.yaml":     {Data: []byte(lifecycleFile("overdue", siteA, "owner: team-web\nexpires: 2026-03-01\n"))},
		"flags/stale.yaml":       {Data: []byte(lifecycleFile("stale", siteA, "owner: team-web\npermanent: true\n"))},
		"flags/smelly.yaml":      {Data: []byte(lifecycleFile("smelly", siteA, owned))},
		"flags/fully_on.yaml":    {Data: []byte(lifecycleFile("fully_on", siteA, owned))},
		"flags/ramped_on.yaml":   {Data: []byte(lifecycleFile("ramped_on", siteA, owned))},
		"flags/recently_on.yaml": {Data: []byte(lifecycleFile("recently_on", siteA, owned))},
		"flags/not_live.yaml":    {Data: []byte(lifecycleFile("not_live", siteA, owned))},
		"flags/b/fully_off.yaml": {Data: []byte(lifecycleFile("fully_off", siteB, owned))},
		"flags/b/archived.yaml":  {Data: []byte(lifecycleFile("archived_live", siteB, owned))},
		"flags/b/no_owner.yaml":  {Data: []byte(lifecycleFile("no_owner", siteB, ""))},
	}
	c, err := kclient.New(kclient.Config{BaseURL: ts.URL, ClientID: ksandbox.DefaultClientID, ClientSecret: ksandbox.DefaultClientSecret,
		Budget: kclient.NewBudget(10000, 100000)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := reconcile.Load([]reconcile.Vendor{Vendor(c)}, reconcile.Source{FS: fsys, Dir: "flags"})
	if err != nil {
		t.Fatal(err)
	}
	sb.ResetCalls()
	if err := l.Parts[0].Repo.Read(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, call := range sb.Calls() {
		calls = append(calls, call.Method+" "+call.Path+"?"+siteOf(call.Query))
	}
	want := "POST /oauth/token? GET /feature-flags?site=" + siteA + " GET /feature-flags?site=" + siteB
	if strings.Join(calls, " ") != want {
		t.Errorf("calls:\n  %s\nwant one list per site:\n  %s", strings.Join(calls, "\n  "), want)
	}

	rep := lifecycle.Build(lifecycle.Collect(l), lifecycle.Options{Now: lifecycleNow, Days: 30})
	wantCounts := map[string]int{lifecycle.StateOverdue: 1, lifecycle.StateStale: 2, lifecycle.StateFullyOn: 2, lifecycle.StateFullyOff: 1,
		lifecycle.StateArchivedLive: 1, lifecycle.StateNoOwner: 1, lifecycle.StateNoExpiry: 1, lifecycle.StatePermanent: 1, lifecycle.StateNotLive: 1}
	for _, s := range lifecycle.States {
		if rep.Counts[s] != wantCounts[s] {
			t.Errorf("%s: %d flags, want %d", s, rep.Counts[s], wantCounts[s])
		}
	}
	if len(rep.Flags) != 10 || rep.Flags[0].Key != "overdue" {
		t.Fatalf("%d flags, first %s", len(rep.Flags), rep.Flags[0].Key)
	}
	byKey := map[string]lifecycle.Entry{}
	for _, e := range rep.Flags {
		byKey[e.Key] = e
	}
	check := func(key, what string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %s = %v, want %v", key, what, got, want)
		}
	}
	check("overdue", "age", byKey["overdue"].AgeDays, 400)
	check("overdue", "days overdue", byKey["overdue"].OverdueDays, 91)
	check("stale", "health", byKey["stale"].Health, "STALE")
	check("smelly", "states", byKey["smelly"].States, []string{lifecycle.StateStale})
	check("fully_on", "settled", byKey["fully_on"].Settled, []lifecycle.Settled{{Environment: "production", Serving: lifecycle.On, Days: 45}})
	check("ramped_on", "settled", byKey["ramped_on"].Settled, []lifecycle.Settled{{Environment: "production", Serving: lifecycle.On, Days: 31}})
	check("recently_on", "settled", len(byKey["recently_on"].Settled), 0)
	check("fully_off", "settled", byKey["fully_off"].Settled, []lifecycle.Settled{{Environment: "production", Serving: lifecycle.Off, Days: 60}})
	check("archived_live", "states", byKey["archived_live"].States, []string{lifecycle.StateArchivedLive})
	check("no_owner", "states", byKey["no_owner"].States, []string{lifecycle.StateNoOwner, lifecycle.StateNoExpiry})
	check("not_live", "age", byKey["not_live"].AgeDays, -1)
	check("no_owner", "file", byKey["no_owner"].File, "flags/b/no_owner.yaml")

	var txt strings.Builder
	if err := lifecycle.RenderText(&txt, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(txt.String(), "flagsync report at 2026-06-01 (fully on or off: 30 days or more)\n") ||
		!strings.Contains(txt.String(), "sitea00001/overdue") || !strings.HasSuffix(txt.String(), rep.SummaryLine()+"\n") {
		t.Errorf("text report:\n%s", txt.String())
	}
	var js strings.Builder
	if err := lifecycle.RenderJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Counts map[string]int `json:"counts"`
	}
	if err := json.Unmarshal([]byte(js.String()), &doc); err != nil || doc.Counts[lifecycle.StateStale] != 2 {
		t.Errorf("json counts %v (%v)", doc.Counts, err)
	}
}

// siteOf is "site=" and the siteCode a list call's query names.
func siteOf(query string) string {
	for _, kv := range strings.Split(query, "&") {
		if v, ok := strings.CutPrefix(kv, "siteCode="); ok {
			return "site=" + v
		}
	}
	return ""
}
