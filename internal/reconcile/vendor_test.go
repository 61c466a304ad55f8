package reconcile

import (
	"testing"

	"github.com/flagsync/flagsync/internal/plan"
)

// TestMergeKeepsNotes: the plans of several services shown as one keep every service's
// notes.
func TestMergeKeepsNotes(t *testing.T) {
	kameleoon := plan.Plan{Service: "Kameleoon", Notes: []plan.Note{{Kind: plan.NotePaused, Path: "a"}}}
	split := plan.Plan{Service: "Split", Changes: []plan.Change{{Action: plan.ActionUpdate}}}
	out := merge("r", []plan.Plan{kameleoon, split})
	if len(out.Notes) != 1 || out.Notes[0].Path != "a" || out.Service != "Kameleoon and Split" {
		t.Errorf("merged plan: notes %+v, service %q", out.Notes, out.Service)
	}
}
