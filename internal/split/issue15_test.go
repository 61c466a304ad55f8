package split_test

// End-to-end tests of issue 15 against the Split sandbox, one per item: the sandbox
// reproduces what Split documents (dependencies refused with 400, published limits,
// workspaces that require a title and a comment, Harness keys in x-api-key, environments
// that require approvals), and flagsync must sync through each. New client settings are
// given through splitclient.ConfigFromEnv, as a command would.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/split"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
	splitsandboxtest "github.com/flagsync/flagsync/internal/split/sandbox/sandboxtest"
)

// e2e is a sandbox and a client made from environment variables.
type e2e struct {
	sb     *splitsandbox.Server
	url    string
	client *splitclient.Client
	calls  atomic.Int64
}

// newE2E starts a sandbox with opts and builds the client from vars (the admin key and
// the sandbox's URL are added unless vars set a key).
func newE2E(t *testing.T, opts splitsandbox.Options, vars map[string]string) *e2e {
	t.Helper()
	opts.RatePerSecond, opts.RatePerMinute = -1, -1
	if len(opts.Environments) == 0 {
		opts.Environments = []string{"Staging", "Production"}
	}
	w := &e2e{}
	var ts interface{ Close() }
	sb, srv := splitsandboxtest.NewTestServer(t, opts)
	w.sb, ts, w.url = sb, srv, srv.URL
	_ = ts
	env := map[string]string{"SPLIT_API_URL": w.url}
	if vars["SPLIT_ADMIN_API_KEY"] == "" && vars["SPLIT_API_KEY"] == "" {
		key := opts.APIKey
		if key == "" {
			key = splitsandbox.DefaultAPIKey
		}
		env["SPLIT_ADMIN_API_KEY"] = key
	}
	for k, v := range vars {
		env[k] = v
	}
	cfg, err := splitclient.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config from the environment: %v", err)
	}
	cfg.Budget = splitclient.NewBudget(1000, 100000)
	cfg.Observer = func(api.CallInfo) { w.calls.Add(1) }
	c, err := splitclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.client = c
	return w
}

const rev15 = "9c1e5a7b3d2f4e6a8b0c1d2e3f4a5b6c7d8e9f01"

func (w *e2e) sync(t *testing.T, fsys fstest.MapFS, dryRun bool) (*reconcile.Report, error) {
	t.Helper()
	return reconcile.Run(context.Background(), reconcile.Input{Revision: rev15, FS: fsys, Dir: "flags",
		Vendors: []reconcile.Vendor{split.Vendor(w.client)}, DryRun: dryRun, Calls: w.calls.Load, Concurrency: 4})
}

func repo15(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{"flags/flagsync.yaml": {Data: []byte(settings)}}
	for name, body := range files {
		fsys["flags/"+name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

// statuses counts results by status.
func statuses(rep *reconcile.Report) map[string]int {
	out := map[string]int{}
	for _, r := range rep.Results {
		out[string(r.Status)]++
	}
	return out
}

func writesOf(sb *splitsandbox.Server) []string {
	var out []string
	for _, c := range sb.Calls() {
		if c.Method != http.MethodGet {
			out = append(out, c.Method+" "+strings.TrimPrefix(c.Path, splitclient.APIPrefix)+fmt.Sprintf(" %d", c.Status))
		}
	}
	return out
}

// gated is a flag with Staging and Production, the flag others depend on.
const gated = `name: z_gate
environments:
  Staging:
    treatments: [{name: "on"}, {name: "off"}]
    defaultTreatment: "off"
  Production:
    treatments: [{name: "on"}, {name: "off"}]
    defaultTreatment: "off"
`

// dependsOn is flag %s naming flag %s's "on" in Staging and Production.
const dependsOn = `name: %s
environments:
  Staging:
    treatments: [{name: "on"}, {name: "off"}]
    defaultTreatment: "off"
    rules:
      - condition: {matchers: [{type: IN_SPLIT, depends: {splitName: %[2]s, treatment: "on"}}]}
        buckets: [{treatment: "on", size: 100}]
  Production:
    treatments: [{name: "on"}, {name: "off"}]
    defaultTreatment: "off"
    rules:
      - condition: {matchers: [{type: IN_SPLIT, depends: {splitName: %[2]s, treatment: "on"}}]}
        buckets: [{treatment: "on", size: 100}]
`

// Item 1: a flag's definition is applied after the definitions of the flags its rules
// name, even when it sorts first and flags are applied concurrently; a definition that
// names a flag that exists neither in Git nor in Split is refused by the planner with a
// reason (the sandbox, as Split, would refuse it with 400), and a new flag whose
// definition is refused is not created at all.
func TestDependencyOrderEndToEnd(t *testing.T) {
	w := newE2E(t, splitsandbox.Options{}, nil)
	if err := w.sb.Seed(splitmodel.Flag{Workspace: ws, Name: "legacy_gate", TrafficType: "user", Environments: map[string]splitmodel.Definition{
		"Staging":    {Treatments: []splitmodel.Treatment{{Name: "on"}, {Name: "off"}}, DefaultTreatment: "off"},
		"Production": {Treatments: []splitmodel.Treatment{{Name: "on"}, {Name: "off"}}, DefaultTreatment: "off"}}}); err != nil {
		t.Fatal(err)
	}
	fsys := repo15(map[string]string{
		"z_gate.yaml":   gated,
		"a_dep.yaml":    fmt.Sprintf(dependsOn, "a_dep", "z_gate"),          // sorts before the flag it names
		"m_legacy.yaml": fmt.Sprintf(dependsOn, "m_legacy", "legacy_gate"),  // names a live flag Git does not manage
		"b_orphan.yaml": fmt.Sprintf(dependsOn, "b_orphan", "nowhere_gate"), // names a flag that exists nowhere
	})
	rep, err := w.sync(t, fsys, false)
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, render(rep.Plan))
	}
	st := statuses(rep)
	if st["failed"] != 0 || st["applied"] != 9 {
		t.Fatalf("results %v, want 9 applied and none failed\nwrites: %s\n%s", st, strings.Join(writesOf(w.sb), "\n"), render(rep.Plan))
	}
	// The plan creates z_gate and its definitions before a_dep's definitions.
	pos := map[string]int{}
	for _, c := range rep.Plan.Changes {
		pos[c.Key+"/"+c.Environment] = c.Order
	}
	for _, env := range []string{"Staging", "Production"} {
		if pos["z_gate/"+env] == 0 || pos["a_dep/"+env] == 0 || pos["z_gate/"+env] > pos["a_dep/"+env] {
			t.Errorf("%s: z_gate's definition is change %d, a_dep's %d; want z_gate first", env, pos["z_gate/"+env], pos["a_dep/"+env])
		}
	}
	// b_orphan is refused whole: nothing was written for it, and the reason names the flag.
	for _, c := range w.sb.Calls() {
		if strings.Contains(c.Path, "b_orphan") || strings.Contains(string(c.Body), "b_orphan") {
			t.Errorf("a call for the refused flag: %s %s", c.Method, c.Path)
		}
	}
	if len(rep.Refused) != 1 || rep.Refused[0].Key != "b_orphan" || !strings.Contains(rep.Refused[0].Reason, "nowhere_gate") || rep.Converged {
		t.Errorf("refused = %+v, converged %t", rep.Refused, rep.Converged)
	}
	// The second sync writes nothing.
	w.sb.ResetCalls()
	rep, err = w.sync(t, fsys, false)
	if err != nil || len(rep.Plan.Changes) != 0 || w.sb.Writes() != 0 {
		t.Fatalf("second sync: err=%v changes=%d writes=%d", err, len(rep.Plan.Changes), w.sb.Writes())
	}
	// Pruning kills dependents before the flags they name.
	fsys["flags/flagsync.yaml"] = &fstest.MapFile{Data: []byte(settings + "prune: true\n")}
	delete(fsys, "flags/a_dep.yaml")
	delete(fsys, "flags/z_gate.yaml")
	rep, err = reconcile.Run(context.Background(), reconcile.Input{Revision: rev15, FS: fsys, Dir: "flags",
		Vendors: []reconcile.Vendor{split.Vendor(w.client)}, DryRun: true, AllowMassArchive: true})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, c := range rep.Plan.Changes {
		order = append(order, c.Key+"/"+c.Environment)
	}
	if strings.Join(order, " ") != "a_dep/Staging a_dep/Production z_gate/Staging z_gate/Production" {
		t.Errorf("prune order: %v", order)
	}
}

// Item 1 (the sandbox): a definition that names a flag absent in its environment is
// refused with 400, as Split refuses it.
func TestSandboxRefusesAnAbsentDependency(t *testing.T) {
	w := newE2E(t, splitsandbox.Options{}, nil)
	f := &splitmodel.Flag{Workspace: ws, Name: "dep", TrafficType: "user"}
	if err := w.client.CreateFlag(context.Background(), f, nil); err != nil {
		t.Fatal(err)
	}
	d := splitmodel.Definition{Treatments: []splitmodel.Treatment{{Name: "on"}, {Name: "off"}}, DefaultTreatment: "off",
		Rules: []splitmodel.Rule{{Condition: splitmodel.Condition{Matchers: []splitmodel.Matcher{{Type: "IN_SPLIT", Depends: &splitmodel.Depends{SplitName: "absent", Treatment: "on"}}}},
			Buckets: []splitmodel.Bucket{{Treatment: "on", Size: 100}}}}}
	err := w.client.CreateDefinition(context.Background(), ws, "dep", "Production", d)
	if !api.HasStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), `"absent"`) {
		t.Errorf("create: %v, want 400 naming the absent flag", err)
	}
}

// Item 2: published limits are validated before any write, and a new flag whose
// definition the server refuses anyway is not left half-created.
func TestLimitsAndNoHalfCreatedFlag(t *testing.T) {
	w := newE2E(t, splitsandbox.Options{}, nil)
	keys := make([]string, 501)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
	}
	big := "name: big\nenvironments:\n  Production:\n    treatments:\n      - {name: \"on\", keys: [" + strings.Join(keys, ", ") + "]}\n      - {name: \"off\"}\n    defaultTreatment: \"off\"\n"
	rep, err := w.sync(t, repo15(map[string]string{"big.yaml": big}), false)
	var invalid *diag.InvalidError
	if !errors.As(err, &invalid) || len(w.sb.Calls()) != 0 {
		t.Fatalf("501 keys: err=%v calls=%d results=%v, want invalid files and no call", err, len(w.sb.Calls()), statuses(rep))
	}
	if !strings.Contains(invalid.Diagnostics[0].String(), "at most 500") {
		t.Errorf("diagnostic: %s", invalid.Diagnostics[0])
	}
	one := "name: single\nenvironments:\n  Production:\n    treatments: [{name: \"on\"}]\n    defaultTreatment: \"on\"\n"
	if _, err := w.sync(t, repo15(map[string]string{"single.yaml": one}), false); !errors.As(err, &invalid) || len(w.sb.Calls()) != 0 {
		t.Fatalf("one treatment: err=%v calls=%d", err, len(w.sb.Calls()))
	}

	// A refusal flagsync cannot foresee: the flag created moments before is deleted again.
	fresh := "name: fresh\nenvironments:\n  Staging:\n    treatments: [{name: \"on\"}, {name: \"off\"}]\n    defaultTreatment: \"off\"\n  Production:\n    treatments: [{name: \"on\"}, {name: \"off\"}]\n    defaultTreatment: \"off\"\n"
	w.sb.InjectFault(splitsandbox.Fault{Method: "POST", PathPrefix: splitclient.DefinitionPath(ws, "fresh", "Production"), Status: 400, Body: `{"code":400,"message":"refused for a reason flagsync does not check"}`})
	rep, err = w.sync(t, repo15(map[string]string{"fresh.yaml": fresh}), false)
	if err != nil {
		t.Fatal(err)
	}
	if st := statuses(rep); st["failed"] != 1 || rep.Converged {
		t.Fatalf("results %v converged %t\n%s", st, rep.Converged, strings.Join(writesOf(w.sb), "\n"))
	}
	var failed apply.Result
	for _, r := range rep.Results {
		if r.Err != nil {
			failed = r
		}
	}
	if !strings.Contains(failed.Err.Error(), "refused for a reason flagsync does not check") || !strings.Contains(failed.Err.Error(), "deleted again") {
		t.Errorf("error = %v", failed.Err)
	}
	if _, err := w.client.GetFlag(context.Background(), ws, "fresh"); !api.IsNotFound(err) {
		t.Errorf("the half-created flag is still there: %v\n%s", err, strings.Join(writesOf(w.sb), "\n"))
	}
	// Without the fault, the next sync creates it whole.
	rep, err = w.sync(t, repo15(map[string]string{"fresh.yaml": fresh}), false)
	if err != nil || !rep.Converged {
		t.Fatalf("retry: err=%v converged=%t", err, rep.Converged)
	}
}

// Item 3: every definition write carries a title and a comment (default: the revision
// and the change's reason; templates from SPLIT_CHANGE_TITLE / SPLIT_CHANGE_COMMENT), so a
// workspace that requires them converges; a refused write's empty-bodied 400 is explained.
func TestTitleAndCommentEndToEnd(t *testing.T) {
	opts := splitsandbox.Options{TitleAndCommentsRequired: []string{ws}}
	w := newE2E(t, opts, nil)
	fsys := repo15(map[string]string{"dark_mode.yaml": darkMode})
	rep, err := w.sync(t, fsys, false)
	if err != nil || !rep.Converged || statuses(rep)["applied"] != 2 {
		t.Fatalf("default title and comment: err=%v converged=%t results=%v\n%s", err, rep.Converged, statuses(rep), strings.Join(writesOf(w.sb), "\n"))
	}
	var q url.Values
	for _, c := range w.sb.Calls() {
		if c.Method == "POST" && strings.Contains(c.Path, "/environments/") {
			q, _ = url.ParseQuery(c.Query)
		}
	}
	if !strings.Contains(q.Get("title"), "9c1e5a7") || !strings.Contains(q.Get("comment"), "environment Production is in Git") {
		t.Errorf("default title %q, comment %q", q.Get("title"), q.Get("comment"))
	}
	for _, c := range w.sb.Calls() {
		if c.Method == "POST" && strings.Contains(c.Path, "/trafficTypes/") {
			if fq, _ := url.ParseQuery(c.Query); fq.Get("title") != "flagsync 9c1e5a7: dark_mode" {
				t.Errorf("the flag's creation carries title %q", fq.Get("title"))
			}
		}
	}

	w = newE2E(t, opts, map[string]string{
		"SPLIT_CHANGE_TITLE":   "GitOps {{.Flag}}/{{.Environment}} @ {{.Revision}}",
		"SPLIT_CHANGE_COMMENT": "{{.Reason}} — {{.PR}}",
		"FLAGSYNC_PR_URL":      "https://git.example/acme/flags/pull/7",
	})
	if rep, err := w.sync(t, fsys, false); err != nil || !rep.Converged {
		t.Fatalf("templates: err=%v", err)
	}
	for _, c := range w.sb.Calls() {
		if c.Method == "POST" && strings.Contains(c.Path, "/environments/") {
			q, _ = url.ParseQuery(c.Query)
		}
	}
	if q.Get("title") != "GitOps dark_mode/Production @ "+rev15 || !strings.HasSuffix(q.Get("comment"), "— https://git.example/acme/flags/pull/7") {
		t.Errorf("templated title %q, comment %q", q.Get("title"), q.Get("comment"))
	}

	// A template that renders nothing sends no title: the 400 is explained.
	w = newE2E(t, opts, map[string]string{"SPLIT_CHANGE_TITLE": `{{""}}`})
	rep, _ = w.sync(t, fsys, false)
	var msg string
	for _, r := range rep.Results {
		if r.Err != nil {
			msg = r.Err.Error()
		}
	}
	if !strings.Contains(msg, "requires a title and a comment") || !strings.Contains(msg, "requiresTitleAndComments") {
		t.Errorf("explained 400: %q", msg)
	}
	// Elsewhere an empty-bodied 400 names the request.
	w = newE2E(t, splitsandbox.Options{}, nil)
	w.sb.InjectFault(splitsandbox.Fault{Method: "POST", PathPrefix: splitclient.DefinitionPath(ws, "dark_mode", "Production"), Status: 400, Body: " "})
	rep, _ = w.sync(t, fsys, false)
	msg = ""
	for _, r := range rep.Results {
		if r.Err != nil {
			msg = r.Err.Error()
		}
	}
	if !strings.Contains(msg, "400 with an empty body") || !strings.Contains(msg, "POST "+splitclient.DefinitionPath(ws, "dark_mode", "Production")) {
		t.Errorf("empty 400: %q", msg)
	}
}

// Item 4: a Harness key goes in x-api-key, and a workspace given by name is resolved
// through GET /workspaces once per client.
func TestHarnessKeyAndWorkspaceByName(t *testing.T) {
	const id = "557c90d0-7c44-11ec-97df-eafbc0e90433"
	const key = "pat.acct123.tok456.s3cr3tv4lu3"
	w := newE2E(t, splitsandbox.Options{HarnessKeys: true, APIKey: key, Workspaces: []string{id, "5a1b2c3d-0000-4000-8000-000000000002"},
		WorkspaceNames: map[string]string{id: "Default", "5a1b2c3d-0000-4000-8000-000000000002": "Mobile"}},
		map[string]string{"SPLIT_API_KEY": key})
	fsys := fstest.MapFS{
		"flags/flagsync.yaml":  {Data: []byte("vendor: split\nworkspace: Default\ntrafficType: user\nenvironments: [Staging, Production]\n")},
		"flags/dark_mode.yaml": {Data: []byte(darkMode)},
	}
	rep, err := w.sync(t, fsys, false)
	if err != nil || !rep.Converged {
		t.Fatalf("sync: err=%v converged=%t\n%s", err, rep != nil && rep.Converged, strings.Join(writesOf(w.sb), "\n"))
	}
	// The name is taken as given until Split refuses it (404 here), then looked up once;
	// every later call names the workspace by its id.
	lookups, byName := 0, 0
	count := func() {
		for _, c := range w.sb.Calls() {
			switch {
			case strings.HasSuffix(c.Path, "/workspaces"):
				lookups++
			case strings.Contains(c.Path, "/splits/ws/Default"):
				byName++
			case strings.Contains(c.Path, "/splits/ws/") && !strings.Contains(c.Path, "/splits/ws/"+id):
				t.Errorf("a call to another workspace: %s %s", c.Method, c.Path)
			}
		}
		w.sb.ResetCalls()
	}
	count()
	rep, err = w.sync(t, fsys, false)
	count()
	if err != nil || len(rep.Plan.Changes) != 0 || lookups != 1 || byName != 1 {
		t.Errorf("second sync: err=%v changes=%d; %d workspace lookups and %d calls by name in all, want 1 each", err, len(rep.Plan.Changes), lookups, byName)
	}
	// A workspace that is neither a name nor an id is an error that lists them.
	fsys["flags/flagsync.yaml"] = &fstest.MapFile{Data: []byte("vendor: split\nworkspace: Web\ntrafficType: user\n")}
	if _, err := w.sync(t, fsys, true); err == nil || !strings.Contains(err.Error(), `"Web"`) || !strings.Contains(err.Error(), "Default") {
		t.Errorf("unknown workspace: %v", err)
	}
	// The header mode can be forced for a key without Harness's prefix.
	w2 := newE2E(t, splitsandbox.Options{HarnessKeys: true, APIKey: "plainkey123"}, map[string]string{"SPLIT_API_KEY": "plainkey123", "SPLIT_API_KEY_HEADER": "x-api-key"})
	if rep, err := w2.sync(t, repo15(map[string]string{"dark_mode.yaml": darkMode}), false); err != nil || !rep.Converged {
		t.Errorf("forced x-api-key: %v", err)
	}
}

// Item 5: an environment that requires approvals answers 403; flagsync files the change
// as a change request (title, comment with the PR link, approvers), reports it as
// awaiting approval, does not file it again while it is open, and converges once it is
// approved and applied.
func TestApprovalBridgeEndToEnd(t *testing.T) {
	w := newE2E(t, splitsandbox.Options{ApprovalEnvironments: []string{"Production"}}, map[string]string{
		"SPLIT_CHANGE_APPROVERS": "lead@example.com, qa@example.com",
		"FLAGSYNC_PR_URL":        "https://git.example/acme/flags/pull/9",
	})
	checkoutFile := strings.Replace(checkout, "trafficAllocation: 40", "trafficAllocation: 40\n    impressionsDisabled: true", 1)
	fsys := repo15(map[string]string{"new_checkout.yaml": checkoutFile})
	rep, err := w.sync(t, fsys, false)
	if err != nil {
		t.Fatal(err)
	}
	st := statuses(rep)
	if st["applied"] != 2 || st["awaiting-approval"] != 1 || st["failed"] != 0 || rep.Converged {
		t.Fatalf("first sync: %v converged=%t\n%s", st, rep.Converged, strings.Join(writesOf(w.sb), "\n"))
	}
	crs := w.sb.ChangeRequests()
	if len(crs) != 1 || crs[0].OperationType != "CREATE" || crs[0].Environment != "Production" || crs[0].Flag != "new_checkout" ||
		!slices.Equal(crs[0].Approvers, []string{"lead@example.com", "qa@example.com"}) || !strings.Contains(crs[0].Title, "9c1e5a7") ||
		!strings.Contains(crs[0].Comment, "https://git.example/acme/flags/pull/9") {
		t.Fatalf("change requests: %+v", crs)
	}
	var def map[string]any
	if err := json.Unmarshal(crs[0].Definition, &def); err != nil || def["trafficAllocation"] != float64(40) || def["impressionsDisabled"] != true {
		t.Errorf("proposed definition: %s", crs[0].Definition)
	}
	for _, r := range rep.Results {
		if string(r.Status) == "awaiting-approval" && !strings.Contains(r.Note, crs[0].ID) {
			t.Errorf("note = %q, want the change request's id", r.Note)
		}
	}

	// While it is open, a new sync (a new client, as in CI) does not file it again.
	w2 := &e2e{sb: w.sb, url: w.url}
	cfg, _ := splitclient.ConfigFromEnv(func(k string) string {
		return map[string]string{"SPLIT_ADMIN_API_KEY": splitsandbox.DefaultAPIKey, "SPLIT_API_URL": w.url, "SPLIT_CHANGE_APPROVERS": "lead@example.com"}[k]
	})
	cfg.Budget = splitclient.NewBudget(1000, 100000)
	w2.client, _ = splitclient.New(cfg)
	rep, err = w2.sync(t, fsys, false)
	if err != nil || statuses(rep)["awaiting-approval"] != 1 || len(w.sb.ChangeRequests()) != 1 || rep.Converged {
		t.Fatalf("second sync: err=%v %v, %d change requests", err, statuses(rep), len(w.sb.ChangeRequests()))
	}
	// Once the client knows, its plan shows the change awaiting approval, and a sync
	// sends nothing for it.
	w2.sb.ResetCalls()
	rep, err = w2.sync(t, fsys, false)
	if err != nil || len(rep.Plan.Blocked) != 1 || string(rep.Plan.Blocked[0].Kind) != "awaiting-approval" || rep.Plan.Blocked[0].ChangeRequest != crs[0].ID ||
		!strings.Contains(rep.Plan.SummaryLine(), "1 change awaiting approval in Split") || rep.Plan.Summary().Create != 0 {
		t.Fatalf("plan while open: err=%v blocked=%+v %q\n%s", err, rep.Plan.Blocked, rep.Plan.SummaryLine(), render(rep.Plan))
	}
	if w.sb.Writes() != 0 || statuses(rep)["awaiting-approval"] != 1 || rep.Converged || len(w.sb.ChangeRequests()) != 1 {
		t.Fatalf("sync while open: writes=%d %v converged=%t", w.sb.Writes(), statuses(rep), rep.Converged)
	}

	// Approved and applied: converged, nothing written.
	if err := w.sb.Approve(crs[0].ID); err != nil {
		t.Fatal(err)
	}
	w.sb.ResetCalls()
	rep, err = w.sync(t, fsys, false)
	if err != nil || !rep.Converged || w.sb.Writes() != 0 {
		t.Fatalf("after approval: err=%v converged=%t writes=%d\n%s", err, rep.Converged, w.sb.Writes(), render(rep.Plan))
	}

	// An update goes through a change request with the whole patched definition.
	fsys["flags/new_checkout.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(checkoutFile, "trafficAllocation: 40", "trafficAllocation: 70", 1))}
	rep, err = w.sync(t, fsys, false)
	if err != nil || statuses(rep)["awaiting-approval"] != 1 {
		t.Fatalf("update: err=%v %v", err, statuses(rep))
	}
	crs = w.sb.ChangeRequests()
	if len(crs) != 2 || crs[1].OperationType != "UPDATE" || !strings.Contains(string(crs[1].Definition), `"trafficAllocation":70`) || !strings.Contains(string(crs[1].Definition), `"keys":["qa-1","qa-2"]`) {
		t.Fatalf("update request: %+v", crs[len(crs)-1])
	}
	if err := w.sb.Approve(crs[1].ID); err != nil {
		t.Fatal(err)
	}
	if rep, err := w.sync(t, fsys, false); err != nil || !rep.Converged || len(rep.Plan.Changes) != 0 {
		t.Fatalf("after the second approval: err=%v", err)
	}
}

// Item 6: a new definition written killed works under both readings of the create (the
// server takes killed, or it must be killed after creation); impressionsDisabled is
// planned; numeric treatment names sync; a misindented line is reported at its own line;
// the JSON plan names flags with neutral labels.
func TestSmallerItemsEndToEnd(t *testing.T) {
	killed := darkMode + "    killed: true\n"
	for _, after := range []bool{false, true} {
		w := newE2E(t, splitsandbox.Options{KillAfterCreate: after}, nil)
		fsys := repo15(map[string]string{"dark_mode.yaml": killed})
		rep, err := w.sync(t, fsys, false)
		if err != nil || !rep.Converged {
			t.Fatalf("kill after create %t: err=%v converged=%t\n%s", after, err, rep.Converged, strings.Join(writesOf(w.sb), "\n"))
		}
		d, err := w.client.GetDefinition(context.Background(), ws, "dark_mode", "Production")
		if err != nil || !d.Killed {
			t.Errorf("kill after create %t: killed=%t err=%v", after, d.Killed, err)
		}
	}

	w := newE2E(t, splitsandbox.Options{}, nil)
	numeric := "name: tiers\nenvironments:\n  Production:\n    treatments: [{name: \"1\"}, {name: \"2\"}, {name: \"3\"}]\n    defaultTreatment: \"1\"\n    defaultRule: [{treatment: \"1\", size: 50}, {treatment: \"3\", size: 50}]\n"
	fsys := repo15(map[string]string{"dark_mode.yaml": darkMode, "tiers.yaml": numeric})
	if rep, err := w.sync(t, fsys, false); err != nil || !rep.Converged {
		t.Fatalf("numeric treatment names: %v", err)
	}
	// impressionsDisabled changed outside Git is a difference the plan shows.
	if _, err := w.client.Do(context.Background(), api.Request{Method: "PATCH", Path: splitclient.DefinitionPath(ws, "dark_mode", "Production"),
		Body: json.RawMessage(`[{"op":"replace","path":"/impressionsDisabled","value":true}]`)}); err != nil {
		t.Fatal(err)
	}
	rep, err := w.sync(t, fsys, true)
	if err != nil || len(rep.Plan.Changes) != 1 || string(rep.Plan.Changes[0].Request.Body) != `[{"op":"replace","path":"/impressionsDisabled","value":false}]` {
		t.Fatalf("impressionsDisabled: err=%v\n%s", err, render(rep.Plan))
	}
	var js strings.Builder
	if err := plan.RenderJSON(&js, rep.Plan); err != nil {
		t.Fatal(err)
	}
	for _, kameleoon := range []string{"siteCode", "featureKey", "environmentKey"} {
		if strings.Contains(js.String(), kameleoon) {
			t.Errorf("the JSON plan says %s", kameleoon)
		}
	}
	if !strings.Contains(js.String(), `"scope": "ws-1"`) || !strings.Contains(js.String(), `"key": "dark_mode"`) {
		t.Errorf("JSON plan:\n%s", js.String())
	}

	fsys["flags/tiers.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(numeric, "    defaultTreatment", "   defaultTreatment", 1))}
	_, err = w.sync(t, fsys, true)
	var invalid *diag.InvalidError
	if !errors.As(err, &invalid) || invalid.Diagnostics[0].Line != 5 {
		t.Errorf("misindented line: %v", err)
	}
}
