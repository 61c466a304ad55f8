package report

import (
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// TestSyncSummaryLineWithRefusedChanges: a sync whose only difference is a change the
// planner refused must not say "already in sync" (it exits 1: Git and Kameleoon differ).
func TestSyncSummaryLineWithRefusedChanges(t *testing.T) {
	refused := []plan.Blocked{{Kind: plan.BlockedVariationInUse, Reason: "variation on is still served"}}
	for _, tc := range []struct {
		name string
		rep  reconcile.Report
		want string
	}{
		{"only refused", reconcile.Report{Refused: refused}, "nothing to apply; NOT converged (1 change refused by the planner)"},
		{"applied and refused", reconcile.Report{Refused: refused, Verified: true,
			Plan: plan.Plan{Changes: []plan.Change{{Action: plan.ActionUpdate}}}}, "NOT converged (1 change refused by the planner)"},
		{"in sync", reconcile.Report{Converged: true}, "already in sync"},
		{"in sync, with notes", reconcile.Report{Converged: true, Plan: plan.Plan{Notes: []plan.Note{{Kind: plan.NotePaused}, {Kind: plan.NoteIgnored}}}},
			"already in sync; 2 differences left alone (owned outside Git or by Kameleoon's automation)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SummaryLine(&tc.rep, Summary{Where: "the sandbox", Automation: "Kameleoon's automation"}); !strings.Contains(got, tc.want) {
				t.Errorf("summary %q lacks %q", got, tc.want)
			}
		})
	}
}

// TestSummaryLineWithoutAutomation: differences left alone by a service that names no
// automation are owned outside Git.
func TestSummaryLineWithoutAutomation(t *testing.T) {
	rep := reconcile.Report{Converged: true, Plan: plan.Plan{Notes: []plan.Note{{Kind: plan.NoteIgnored, Address: plan.Address{Service: "Fake"}}}}}
	if got := SummaryLine(&rep, Summary{Where: "the fake service"}); !strings.Contains(got, "already in sync; 1 difference left alone (owned outside Git);") {
		t.Errorf("summary %q", got)
	}
	if got := NoteServices(rep.Plan); len(got) != 1 || got[0] != "Fake" {
		t.Errorf("note services %v", got)
	}
}

// TestSummaryLineSaysWhenTheSyncSpentOtherThanPriced: the calls a sync made are compared
// with its plan's price; only a difference is mentioned.
func TestSummaryLineSaysWhenTheSyncSpentOtherThanPriced(t *testing.T) {
	priced := func(calls int64, price int) *reconcile.Report {
		return &reconcile.Report{Converged: true, APICalls: calls, Plan: plan.Plan{Price: &plan.Price{Calls: price}}}
	}
	if got := SummaryLine(priced(21, 21), Summary{Where: "Kameleoon"}); !strings.Contains(got, "; 21 API calls in ") {
		t.Errorf("as priced: %q", got)
	}
	if got := SummaryLine(priced(22, 21), Summary{Where: "Kameleoon"}); !strings.Contains(got, "; 22 API calls (the plan priced 21) in ") {
		t.Errorf("otherwise: %q", got)
	}
}
