package daemon

import (
	"strings"
	"testing"
)

// TestLifecycleMetrics: after each full sync, /metrics counts the flags in each of
// flagsync report's states, from that sync's read: the startup's read found neither flag
// (it created them), the next full sync's finds both.
func TestLifecycleMetrics(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.waitStartup()
	check := func(wants ...string) {
		t.Helper()
		_, text := h.get("/metrics")
		for _, want := range wants {
			if !strings.Contains(text, want+"\n") {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	}
	check(`flagsync_flags{state="not-live"} 2`, `flagsync_flags{state="no-owner"} 2`)

	next := h.cycles() + 1
	h.d.RequestSync("test")
	if rec := h.waitCycle(next); rec.Mode != ModeFull {
		t.Fatalf("sync %+v, want a full one", rec)
	}
	check(`flagsync_flags{state="not-live"} 0`, `flagsync_flags{state="no-owner"} 2`, `flagsync_flags{state="no-expiry"} 2`,
		`flagsync_flags{state="overdue"} 0`, `flagsync_flags{state="stale"} 0`)
}
