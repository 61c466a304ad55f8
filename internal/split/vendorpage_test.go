package split_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/split"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
	splitsandboxtest "github.com/flagsync/flagsync/internal/split/sandbox/sandboxtest"
)

const ws = "ws-1"

// world is a Split sandbox and a client for it.
type world struct {
	sb     *splitsandbox.Server
	client *splitclient.Client
	calls  atomic.Int64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{}
	var ts interface{ Close() }
	var url string
	w.sb, ts, url = startSandbox(t)
	_ = ts
	c, err := splitclient.New(splitclient.Config{BaseURL: url, APIKey: splitsandbox.DefaultAPIKey,
		Budget: splitclient.NewBudget(1000, 100000), Observer: func(api.CallInfo) { w.calls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	w.client = c
	return w
}

func startSandbox(t *testing.T) (*splitsandbox.Server, interface{ Close() }, string) {
	sb, ts := splitsandboxtest.NewTestServer(t, splitsandbox.Options{RatePerSecond: -1, RatePerMinute: -1,
		Environments: []string{"Staging", "Production"}})
	return sb, ts, ts.URL
}

func (w *world) run(t *testing.T, fsys fstest.MapFS, dryRun bool) (*reconcile.Report, error) {
	t.Helper()
	return reconcile.Run(context.Background(), reconcile.Input{
		Revision: "4f1c2a9e0b7d3c5a8e6f1b2d4c9a7e3f5b8d0c1a", FS: fsys, Dir: "flags",
		Vendors: []reconcile.Vendor{split.Vendor(w.client)}, DryRun: dryRun, Calls: w.calls.Load,
	})
}

const settings = "vendor: split\nworkspace: " + ws + "\ntrafficType: user\nenvironments: [Staging, Production]\n"

// flagFile is paywall_beta with the given Production definition (indented by four).
func flagFile(production string) string {
	return "name: paywall_beta\ndescription: Paywall beta\nenvironments:\n  Production:\n" + production
}

func repoWith(production string) fstest.MapFS {
	return fstest.MapFS{
		"flags/flagsync.yaml":     {Data: []byte(settings)},
		"flags/paywall_beta.yaml": {Data: []byte(flagFile(production))},
	}
}

// The Production definitions the vendor page's examples start from and end with.
const (
	onOff = `    treatments:
      - name: "on"
      - name: "off"
    defaultTreatment: "off"
    defaultRule: [{treatment: "off", size: 100}]
`
	withKeys = `    treatments:
      - name: "on"
        keys: ["1", "2", "3"]
        segments: [alpha, beta_testers]
      - name: "off"
        segments: [employees]
    defaultTreatment: "off"
`
	renameBefore = `    treatments:
      - name: "on"
      - name: "off"
    defaultTreatment: "off"
    rules:
      - condition:
          matchers:
            - {type: IN_SEGMENT, string: beta}
        buckets:
          - {treatment: "on", size: 80}
          - {treatment: "off", size: 20}
    defaultRule:
      - {treatment: "on", size: 50}
      - {treatment: "off", size: 50}
`
	twoRules = `    treatments:
      - name: "on"
      - name: "off"
    defaultTreatment: "off"
    rules:
      - condition:
          matchers:
            - {type: IN_SEGMENT, string: beta}
        buckets:
          - {treatment: "on", size: 100}
      - condition:
          matchers:
            - {type: EQUAL_SET, attribute: plan, strings: [premium, gold]}
        buckets:
          - {treatment: "on", size: 50}
          - {treatment: "off", size: 50}
    defaultRule:
      - {treatment: "off", size: 100}
`
)

// TestVendorPageExamples reproduces every example of Split's "partial update feature
// flag definition" page: for the YAML edit that asks for it, flagsync plans exactly one
// PATCH with the vendor's operation (preceded by the test operations that guard changes
// by index), the sandbox applies it, and the next plan has no change.
func TestVendorPageExamples(t *testing.T) {
	tests := []struct {
		name, before, after, patch string
	}{
		{"kill", onOff, onOff + "    killed: true\n",
			`[{"op":"replace","path":"/killed","value":true}]`},
		{"restore", onOff + "    killed: true\n", onOff,
			`[{"op":"replace","path":"/killed","value":false}]`},
		{"limit exposure", onOff, onOff + "    trafficAllocation: 50\n",
			`[{"op":"replace","path":"/trafficAllocation","value":50}]`},
		{"default treatment", onOff, strings.Replace(onOff, `defaultTreatment: "off"`, `defaultTreatment: "on"`, 1),
			`[{"op":"replace","path":"/defaultTreatment","value":"on"}]`},
		{"add a key to a treatment with no keys", onOff, strings.Replace(onOff, `- name: "on"`, `- name: "on"`+"\n        keys: [\"3\"]", 1),
			`[{"op":"test","path":"/treatments/0/name","value":"on"},{"op":"add","path":"/treatments/0/keys","value":["3"]}]`},
		{"add a key to a treatment with keys", withKeys, strings.Replace(withKeys, `["1", "2", "3"]`, `["1", "2", "3", "4"]`, 1),
			`[{"op":"test","path":"/treatments/0/name","value":"on"},{"op":"add","path":"/treatments/0/keys/-","value":"4"}]`},
		{"remove a key", withKeys, strings.Replace(withKeys, `["1", "2", "3"]`, `["1", "2"]`, 1),
			`[{"op":"test","path":"/treatments/0/name","value":"on"},{"op":"test","path":"/treatments/0/keys/2","value":"3"},{"op":"remove","path":"/treatments/0/keys/2"}]`},
		{"replace a key", withKeys, strings.Replace(withKeys, `["1", "2", "3"]`, `["7", "2", "3"]`, 1),
			`[{"op":"test","path":"/treatments/0/name","value":"on"},{"op":"test","path":"/treatments/0/keys/0","value":"1"},{"op":"replace","path":"/treatments/0/keys/0","value":"7"}]`},
		{"add a segment", withKeys, strings.Replace(withKeys, `[employees]`, `[employees, beta]`, 1),
			`[{"op":"test","path":"/treatments/1/name","value":"off"},{"op":"add","path":"/treatments/1/segments/-","value":"beta"}]`},
		{"remove a segment", withKeys, strings.Replace(withKeys, `[alpha, beta_testers]`, `[alpha]`, 1),
			`[{"op":"test","path":"/treatments/0/name","value":"on"},{"op":"test","path":"/treatments/0/segments/1","value":"beta_testers"},{"op":"remove","path":"/treatments/0/segments/1"}]`},
		{"rename a treatment", renameBefore, strings.ReplaceAll(renameBefore, `"on"`, `first_version`),
			`[{"op":"test","path":"/treatments/0/name","value":"on"},{"op":"replace","path":"/treatments/0/name","value":"first_version"},` +
				`{"op":"test","path":"/rules/0/buckets/0/treatment","value":"on"},{"op":"replace","path":"/rules/0/buckets/0/treatment","value":"first_version"},` +
				`{"op":"test","path":"/defaultRule/0/treatment","value":"on"},{"op":"replace","path":"/defaultRule/0/treatment","value":"first_version"}]`},
		{"add a rule", renameBefore, strings.Replace(renameBefore, "    rules:\n", `    rules:
      - condition:
          matchers:
            - {type: IN_SEGMENT, string: employees}
        buckets:
          - {treatment: "on", size: 50}
          - {treatment: "off", size: 50}
`, 1),
			`[{"op":"add","path":"/rules/0","value":{"buckets":[{"treatment":"on","size":50},{"treatment":"off","size":50}],"condition":{"matchers":[{"type":"IN_SEGMENT","string":"employees"}]}}}]`},
		{"remove a rule", twoRules, twoRules[:strings.Index(twoRules, "      - condition:\n          matchers:\n            - {type: EQUAL_SET")] + "    defaultRule:\n      - {treatment: \"off\", size: 100}\n",
			`[{"op":"test","path":"/rules/1","value":{"buckets":[{"size":50,"treatment":"on"},{"size":50,"treatment":"off"}],"condition":{"combiner":"AND","matchers":[{"attribute":"plan","strings":["premium","gold"],"type":"EQUAL_SET"}]}}},{"op":"remove","path":"/rules/1"}]`},
		{"set the baseline treatment", onOff, onOff + "    baselineTreatment: \"off\"\n",
			`[{"op":"add","path":"/baselineTreatment","value":"off"}]`},
		{"change the baseline treatment", onOff + "    baselineTreatment: \"on\"\n", onOff + "    baselineTreatment: \"off\"\n",
			`[{"op":"replace","path":"/baselineTreatment","value":"off"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			rep, err := w.run(t, repoWith(tt.before), false)
			if err != nil || !rep.Converged || w.sb.Writes() != 2 {
				t.Fatalf("first sync: err=%v converged=%t writes=%d, want a create of the flag and of its definition", err, rep.Converged, w.sb.Writes())
			}
			w.sb.ResetCalls()
			rep, err = w.run(t, repoWith(tt.after), false)
			if err != nil {
				t.Fatalf("sync of the edit: %v", err)
			}
			if len(rep.Plan.Changes) != 1 {
				t.Fatalf("the edit planned %d changes, want 1:\n%s", len(rep.Plan.Changes), render(rep.Plan))
			}
			c := rep.Plan.Changes[0]
			if c.Action != plan.ActionUpdate || c.Request.Method != "PATCH" || c.Request.Path != splitclient.DefinitionPath(ws, "paywall_beta", "Production") {
				t.Errorf("change = %s %s %s", c.Action, c.Request.Method, c.Request.Path)
			}
			if got := string(c.Request.Body); got != tt.patch {
				t.Errorf("patch =\n%s\nwant\n%s", got, tt.patch)
			}
			if w.sb.Writes() != 1 || !rep.Verified || !rep.Converged {
				t.Errorf("writes=%d verified=%t converged=%t remaining=%v, want the one PATCH applied and nothing left", w.sb.Writes(), rep.Verified, rep.Converged, rep.Remaining)
			}
			rep, err = w.run(t, repoWith(tt.after), true)
			if err != nil || len(rep.Plan.Changes) != 0 {
				t.Errorf("re-plan after applying: err=%v, %d changes, want none", err, len(rep.Plan.Changes))
			}
		})
	}
}

func render(p plan.Plan) string {
	var b strings.Builder
	_ = plan.RenderText(&b, p, plan.TextOptions{})
	return b.String()
}
