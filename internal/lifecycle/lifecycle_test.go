package lifecycle

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/plan"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func flag(key string, f func(*Flag)) Flag {
	fl := Flag{Address: plan.Address{Service: "Kameleoon", Scope: "s", Key: key}, Live: true, Owner: "team", Expires: "2027-01-01"}
	f(&fl)
	return fl
}

func days(n int) time.Time { return now.Add(-time.Duration(n)*24*time.Hour - time.Hour) }

func TestBuild(t *testing.T) {
	flags := []Flag{
		flag("healthy", func(f *Flag) { f.Created = days(10) }),
		flag("overdue_long", func(f *Flag) { f.Expires = "2026-01-01" }),
		flag("overdue_today", func(f *Flag) { f.Expires = "2026-05-31" }),
		flag("expires_today", func(f *Flag) { f.Expires = "2026-06-01" }),
		flag("no_owner", func(f *Flag) { f.Owner, f.Expires = "", "" }),
		flag("permanent", func(f *Flag) { f.Expires, f.Permanent = "", true }),
		flag("stale", func(f *Flag) { f.Health, f.Stale = "STALE", true }),
		flag("settled", func(f *Flag) {
			f.Environments = []Environment{{Name: "production", Serving: On, Since: days(31)}, {Name: "staging", Serving: Off, Since: days(30)},
				{Name: "development", Serving: On, Since: days(29)}, {Name: "qa", Serving: Partial, Since: days(90)}, {Name: "x", Serving: Off}}
		}),
		flag("archived", func(f *Flag) { f.Archived = true }),
		flag("archived_in_git", func(f *Flag) { f.Archived, f.ArchivedInGit = true, true }),
		flag("new", func(f *Flag) { f.Live = false }),
	}
	r := Build(flags, Options{Now: now, Days: 30})
	var order []string
	for _, e := range r.Flags {
		order = append(order, e.Key)
	}
	want := "overdue_long overdue_today expires_today archived archived_in_git healthy new settled stale no_owner permanent"
	if strings.Join(order, " ") != want {
		t.Errorf("order\n%s\nwant\n%s", strings.Join(order, " "), want)
	}
	byKey := map[string]Entry{}
	for _, e := range r.Flags {
		byKey[e.Key] = e
	}
	if e := byKey["overdue_long"]; e.OverdueDays != 150 {
		t.Errorf("overdue_long: %d days overdue", e.OverdueDays)
	}
	if e := byKey["overdue_today"]; e.OverdueDays != 0 {
		t.Errorf("overdue_today: %d days overdue", e.OverdueDays)
	}
	if e := byKey["expires_today"]; e.OverdueDays != -1 {
		t.Errorf("expires_today is overdue")
	}
	if e := byKey["healthy"]; e.AgeDays != 10 || len(e.States) != 0 {
		t.Errorf("healthy: %+v", e)
	}
	if e := byKey["settled"]; len(e.Settled) != 2 || e.Settled[0] != (Settled{"production", On, 31}) || e.Settled[1] != (Settled{"staging", Off, 30}) {
		t.Errorf("settled: %+v", e.Settled)
	}
	wantCounts := map[string]int{StateOverdue: 2, StateStale: 1, StateFullyOn: 1, StateFullyOff: 1, StateArchivedLive: 1,
		StateNoOwner: 1, StateNoExpiry: 1, StatePermanent: 1, StateNotLive: 1}
	for _, s := range States {
		if r.Counts[s] != wantCounts[s] {
			t.Errorf("count %s = %d, want %d", s, r.Counts[s], wantCounts[s])
		}
	}
	if got := r.SummaryLine(); got != "Report: 11 flags; 2 overdue, 1 stale, 1 fully on (30 days or more), 1 fully off (30 days or more), 1 archived in the service but still in Git, 1 without an owner, 1 without an expiry date, 1 permanent, 1 not in the service." {
		t.Errorf("summary %q", got)
	}
}

func TestRender(t *testing.T) {
	r := Build([]Flag{flag("a", func(f *Flag) { f.Expires = "2026-01-01"; f.Created = days(400); f.Health = "SMELLY"; f.Stale = true })}, Options{Now: now})
	var txt, md, js bytes.Buffer
	if err := RenderText(&txt, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "s/a   Kameleoon  team   400d  2026-01-01 (overdue 150d)  SMELLY  -        stale") ||
		!strings.HasSuffix(txt.String(), r.SummaryLine()+"\n") {
		t.Errorf("text:\n%s", txt.String())
	}
	if err := RenderMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| `s/a` | Kameleoon | team | 400d | 2026-01-01 (overdue 150d) | SMELLY | - | stale |") {
		t.Errorf("markdown:\n%s", md.String())
	}
	if err := RenderJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		FormatVersion int            `json:"format_version"`
		Days          int            `json:"days"`
		Counts        map[string]int `json:"counts"`
		Flags         []struct {
			AgeDays     int      `json:"ageDays"`
			OverdueDays int      `json:"overdueDays"`
			States      []string `json:"states"`
			Settled     []any    `json:"settled"`
		} `json:"flags"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.FormatVersion != 1 || doc.Days != DefaultDays || doc.Counts[StateOverdue] != 1 || len(doc.Flags) != 1 ||
		doc.Flags[0].AgeDays != 400 || doc.Flags[0].OverdueDays != 150 || doc.Flags[0].Settled == nil ||
		strings.Join(doc.Flags[0].States, ",") != "overdue,stale" {
		t.Errorf("json:\n%s", js.String())
	}
}
