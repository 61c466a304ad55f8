package daemon

import (
	"slices"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/split"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
	splitsandboxtest "github.com/flagsync/flagsync/internal/split/sandbox/sandboxtest"
)

const splitFlagYAML = `vendor: split
workspace: ws-1
trafficType: user
name: dark_mode
environments:
  Production:
    treatments: [{name: dark}, {name: light}]
    defaultTreatment: light
    trafficAllocation: 40
`

// TestDaemonSyncsSplitFlags runs the daemon on a Kameleoon repository that holds a Split
// flag file: the startup sync creates both services' flags, and a pushed edit of the
// Split file is a partial sync of that flag alone: one PATCH to Split, nothing to
// Kameleoon.
func TestDaemonSyncsSplitFlags(t *testing.T) {
	ssb, sts := splitsandboxtest.NewTestServer(t, splitsandbox.Options{RatePerSecond: -1, RatePerMinute: -1})
	sc, err := splitclient.New(splitclient.Config{BaseURL: sts.URL, APIKey: splitsandbox.DefaultAPIKey, Budget: splitclient.NewBudget(100000, 1000000)})
	if err != nil {
		t.Fatal(err)
	}
	files := testRepo()
	files["flags/split/dark_mode.yaml"] = splitFlagYAML
	h := newHarness(t, harnessOptions{files: files, config: func(c *Config) {
		c.Vendors = append(c.Vendors, split.Vendor(sc))
	}})
	rec := h.waitStartup()
	if h.writes() != 2 || ssb.Writes() != 2 || !rec.Converged {
		t.Fatalf("startup: kameleoon writes %d, split writes %d, record %+v", h.writes(), ssb.Writes(), rec)
	}

	kameleoonWrites := h.writes()
	ssb.ResetCalls()
	_, next := h.push(map[string]string{"flags/split/dark_mode.yaml": strings.Replace(splitFlagYAML, "trafficAllocation: 40", "trafficAllocation: 90", 1)}, "more dark mode")
	rec = h.waitCycle(next)
	if rec.Mode != ModePartial || !slices.Equal(rec.Flags, []string{"ws-1/dark_mode"}) || rec.Result != ResultSuccess || !rec.Converged {
		t.Fatalf("partial sync of the Split edit: %+v", rec)
	}
	var writes []string
	for _, c := range ssb.Calls() {
		if c.Method != "GET" {
			writes = append(writes, c.Method+" "+c.Path+" "+string(c.Body))
		}
	}
	want := []string{"PATCH " + splitclient.DefinitionPath("ws-1", "dark_mode", "Production") + ` [{"op":"replace","path":"/trafficAllocation","value":90}]`}
	if !slices.Equal(writes, want) || h.writes() != kameleoonWrites {
		t.Errorf("writes: split %q, kameleoon %d more; want %q", writes, h.writes()-kameleoonWrites, want)
	}

	// An invalid Split file stops the sync of the revision: nothing is written.
	_, next = h.push(map[string]string{"flags/split/dark_mode.yaml": strings.Replace(splitFlagYAML, "defaultTreatment: light", "defaultTreatment: lite", 1)}, "typo")
	ssb.ResetCalls()
	rec = h.waitCycle(next)
	if rec.Result == ResultSuccess || rec.Problems != 1 || ssb.Writes() != 0 {
		t.Errorf("invalid Split file: record %+v, split writes %d", rec, ssb.Writes())
	}
}
