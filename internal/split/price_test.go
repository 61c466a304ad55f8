package split_test

import (
	"strings"
	"testing"
)

// TestPriceMatchesTheCallLog: Split's price of a plan (creates, an edit, a dry run, a
// steady state) is what the sync then spends, call for call, as the sandbox logs them.
func TestPriceMatchesTheCallLog(t *testing.T) {
	w := newWorld(t)
	base := syncRepo()
	edited := syncRepo()
	edited["flags/ui/dark_mode.yaml"].Data = []byte(strings.Replace(darkMode, "defaultTreatment: light", "defaultTreatment: dark", 1))
	for _, step := range []struct {
		name         string
		edit, dryRun bool
	}{
		{"creates", false, false},
		{"steady state", false, false},
		{"a dry run of an edit", true, true},
		{"the edit", true, false},
	} {
		fsys := base
		if step.edit {
			fsys = edited
		}
		w.sb.ResetCalls()
		rep, err := w.run(t, fsys, step.dryRun)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		p := rep.Plan.Price
		if p == nil || len(p.Services) != 1 || p.Services[0].Rule != "" {
			t.Fatalf("%s: price %+v, want Split's own", step.name, p)
		}
		if logged := len(w.sb.Calls()); p.Calls != logged {
			t.Errorf("%s: priced %d calls (%+v), the sandbox logged %d", step.name, p.Calls, p.Services[0], logged)
		}
		if sp := p.Services[0]; len(sp.Limits) != 2 || sp.Window == nil || sp.Window.Period != "1m" {
			t.Errorf("%s: limits %+v, window %+v: want Split's per second and per minute", step.name, sp.Limits, sp.Window)
		}
	}
}
