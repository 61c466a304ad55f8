package daemon

import (
	"slices"
	"strings"
	"testing"
	"time"

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

// TestDaemonAwaitingApproval: a Split environment that requires approvals holds the
// daemon's change as a change request. The sync did all it could: it succeeds, is not
// retried, and /status and the metrics show the change awaiting approval; once a person
// approves it, the next check finds nothing awaiting.
func TestDaemonAwaitingApproval(t *testing.T) {
	ssb, sts := splitsandboxtest.NewTestServer(t, splitsandbox.Options{RatePerSecond: -1, RatePerMinute: -1, ApprovalEnvironments: []string{"Production"}})
	sc, err := splitclient.New(splitclient.Config{BaseURL: sts.URL, APIKey: splitsandbox.DefaultAPIKey, Budget: splitclient.NewBudget(100000, 1000000),
		Approvers: []string{"lead@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	files := testRepo()
	files["flags/split/dark_mode.yaml"] = splitFlagYAML
	h := newHarness(t, harnessOptions{files: files, config: func(c *Config) {
		c.Vendors = append(c.Vendors, split.Vendor(sc))
		c.RetryBase = 10 * time.Millisecond
	}})
	rec := h.waitStartup()
	if rec.Result != ResultSuccess || rec.Summary.AwaitingApproval != 1 || len(ssb.ChangeRequests()) != 1 {
		t.Fatalf("startup: %+v, %d change requests; want success with one change awaiting approval", rec, len(ssb.ChangeRequests()))
	}
	time.Sleep(100 * time.Millisecond) // a retry would have run by now
	s := h.status()
	if s.Retry != nil || len(s.Syncs) != 1 {
		t.Errorf("retry %+v, %d syncs: a change awaiting approval is not retried", s.Retry, len(s.Syncs))
	}
	if len(s.AwaitingApproval) != 1 || s.AwaitingApproval[0].Flag != "ws-1/dark_mode" || s.AwaitingApproval[0].Service != "Split" {
		t.Errorf("/status awaitingApproval = %+v", s.AwaitingApproval)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, "flagsync_changes_awaiting_approval 1") {
		t.Error("/metrics does not count the change awaiting approval")
	}
	if err := ssb.Approve(ssb.ChangeRequests()[0].ID); err != nil {
		t.Fatal(err)
	}
	next := h.cycles() + 1
	h.d.RequestSync("signal")
	if rec := h.waitCycle(next); rec.Result != ResultSuccess || !rec.Converged {
		t.Errorf("after the approval: %+v", rec)
	}
	if s := h.status(); len(s.AwaitingApproval) != 0 {
		t.Errorf("after the approval: awaitingApproval %+v", s.AwaitingApproval)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, "flagsync_changes_awaiting_approval 0") {
		t.Error("/metrics still counts a change awaiting approval")
	}
}
