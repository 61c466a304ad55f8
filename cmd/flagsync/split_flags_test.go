package main

import (
	"bytes"
	"context"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/kameleoon"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/split"
	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
	"github.com/flagsync/flagsync/internal/unleash"
)

// splitExample is the example Split repository; its flags and its workspace.
var (
	splitExample      = filepath.Join("..", "..", "examples", "split")
	splitExampleFlags = []string{"beta_gate", "dark_mode", "legacy_banner", "new_checkout", "pricing_tiers"}
)

const splitExampleWorkspace = "5a1b2c3d-0000-4000-8000-000000000001"

// splitSandboxRun runs commands on examples/split with --sandbox, with the built-in
// providers but Split's seeing each embedded sandbox it starts: sandbox() is the last
// one, whose call log and change requests are the server's own record.
type splitSandboxRun struct {
	t       *testing.T
	state   string
	servers []*splitsandbox.Server
	reg     *provider.Registry
}

func newSplitSandboxRun(t *testing.T) *splitSandboxRun {
	r := &splitSandboxRun{t: t, state: filepath.Join(t.TempDir(), "split.json")}
	// The order of builtin.Registry, with Split's provider seeing its sandboxes.
	r.reg = provider.NewRegistry()
	r.reg.Register(kameleoon.Provider())
	r.reg.Register(split.ProviderSeeingSandbox(func(s *splitsandbox.Server) { r.servers = append(r.servers, s) }))
	r.reg.Register(unleash.Provider())
	return r
}

func (r *splitSandboxRun) run(env map[string]string, args ...string) (int, string, string) {
	r.t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }, providers: r.reg}
	args = append(args, "--sandbox", "--repo", splitExample, "--split-sandbox-state", r.state, "--log-level", "error")
	code := a.dispatch(context.Background(), args)
	return code, out.String(), errb.String()
}

// sandbox is the embedded sandbox of the last command.
func (r *splitSandboxRun) sandbox() *splitsandbox.Server {
	r.t.Helper()
	if len(r.servers) == 0 {
		r.t.Fatal("no Split sandbox was started")
	}
	return r.servers[len(r.servers)-1]
}

// definitionWrites are the definition writes the sandbox received (create, patch,
// replace, kill, delete of a flag's definition in an environment), with their flag,
// environment and query.
func definitionWrites(sb *splitsandbox.Server) []struct {
	flag, env string
	query     url.Values
} {
	var out []struct {
		flag, env string
		query     url.Values
	}
	prefix := splitclient.APIPrefix + "/splits/ws/" + splitExampleWorkspace + "/"
	for _, c := range sb.Calls() {
		rest, ok := strings.CutPrefix(c.Path, prefix)
		seg := strings.Split(rest, "/")
		if !ok || c.Method == "GET" || len(seg) < 3 || seg[1] != "environments" {
			continue
		}
		q, _ := url.ParseQuery(c.Query)
		out = append(out, struct {
			flag, env string
			query     url.Values
		}{seg[0], seg[2], q})
	}
	return out
}

// TestSplitTitleAndCommentFlags: --split-title, --split-comment and --split-pr-url reach
// what Split records: every definition write the sandbox received carries the rendered
// templates (in a sandbox whose workspace requires them), plan sends none, and the
// documented variables still set them when the flags are not given.
func TestSplitTitleAndCommentFlags(t *testing.T) {
	r := newSplitSandboxRun(t)
	flags := []string{"--split-sandbox-require-title",
		"--split-title", "GitOps {{.Action}} {{.Flag}} in {{.Environment}}",
		"--split-comment", "{{.Workspace}}/{{.Flag}}: see {{.PR}}",
		"--split-pr-url", "https://git.example/acme/flags/pull/15"}

	code, out, errs := r.run(nil, append([]string{"plan", "--detailed-exitcode"}, flags...)...)
	if code != exitChanges || !strings.Contains(out, "15 to create") {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errs)
	}
	if w := r.sandbox().Writes(); w != 0 {
		t.Errorf("plan: the sandbox received %d writes", w)
	}

	code, out, errs = r.run(nil, append([]string{"sync"}, flags...)...)
	if code != exitOK || !strings.Contains(out, "converged") {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errs)
	}
	writes := definitionWrites(r.sandbox())
	if len(writes) != 2*len(splitExampleFlags) {
		t.Fatalf("the sandbox received %d definition writes, want %d (one per flag and environment)", len(writes), 2*len(splitExampleFlags))
	}
	for _, w := range writes {
		title := "GitOps create " + w.flag + " in " + w.env
		comment := splitExampleWorkspace + "/" + w.flag + ": see https://git.example/acme/flags/pull/15"
		if w.query.Get("title") != title || w.query.Get("comment") != comment {
			t.Errorf("%s in %s: title %q, comment %q; want %q, %q", w.flag, w.env, w.query.Get("title"), w.query.Get("comment"), title, comment)
		}
	}
	code, out, _ = r.run(nil, append([]string{"sync"}, flags...)...)
	if code != exitOK || !strings.Contains(out, "already in sync") || r.sandbox().Writes() != 0 {
		t.Fatalf("second sync: exit %d, %d writes\n%s", code, r.sandbox().Writes(), out)
	}

	// The variables are the flags' defaults; a flag given wins over its variable.
	r2 := newSplitSandboxRun(t)
	env := map[string]string{"SPLIT_CHANGE_TITLE": "env {{.Flag}}", "SPLIT_CHANGE_COMMENT": "env comment", "FLAGSYNC_PR_URL": "https://git.example/pr/2"}
	if code, out, errs := r2.run(env, "sync", "--split-comment", "flag comment {{.PR}}"); code != exitOK {
		t.Fatalf("sync with the variables: exit %d\n%s\n%s", code, out, errs)
	}
	for _, w := range definitionWrites(r2.sandbox()) {
		if w.query.Get("title") != "env "+w.flag || w.query.Get("comment") != "flag comment https://git.example/pr/2" {
			t.Errorf("%s in %s: title %q, comment %q", w.flag, w.env, w.query.Get("title"), w.query.Get("comment"))
		}
	}
}

// TestSplitApprovalFlowWithSandboxFlags: with --split-sandbox-approvals, sync files the
// changes of the approval-gated environment as change requests (with the templates and
// --split-approvers), says they await approval and exits 0; plan shows them awaiting
// approval; --split-sandbox-approve approves them, and the syncs that follow converge.
func TestSplitApprovalFlowWithSandboxFlags(t *testing.T) {
	r := newSplitSandboxRun(t)
	flags := []string{"--split-sandbox-approvals", "Production", "--split-approvers", "lead@example.com, qa@example.com",
		"--split-title", "review {{.Flag}} in {{.Environment}}", "--split-comment", "{{.Action}} from {{.PR}}",
		"--split-pr-url", "https://git.example/acme/flags/pull/16"}
	code, out, errs := r.run(nil, append([]string{"sync"}, flags...)...)
	if code != exitOK || !strings.Contains(out, "awaiting approval") || strings.Contains(out, "refused") {
		t.Fatalf("sync: exit %d\n%s\n%s\nwant exit 0 and changes awaiting approval", code, out, errs)
	}
	crs := r.sandbox().ChangeRequests()
	// new_checkout's Production definition names beta_gate (IN_SPLIT), whose creation
	// there awaits approval: it is filed once that is approved.
	if len(crs) != len(splitExampleFlags)-1 {
		t.Fatalf("%d change requests, want %d: %+v", len(crs), len(splitExampleFlags)-1, crs)
	}
	for _, cr := range crs {
		if cr.Environment != "Production" || cr.Status != splitsandbox.StatusRequested || cr.OperationType != "CREATE" ||
			cr.Title != "review "+cr.Flag+" in Production" || cr.Comment != "create from https://git.example/acme/flags/pull/16" ||
			!slices.Equal(cr.Approvers, []string{"lead@example.com", "qa@example.com"}) {
			t.Errorf("change request %+v", cr)
		}
	}
	for _, w := range definitionWrites(r.sandbox()) {
		if w.env == "Staging" && w.query.Get("title") != "review "+w.flag+" in Staging" {
			t.Errorf("%s in Staging: title %q", w.flag, w.query.Get("title"))
		}
	}

	// A new process does not know yet that Production requires approvals: its plan shows
	// the creations, and its sync finds the requests open, says so, and files none again.
	code, out, errs = r.run(nil, append([]string{"plan"}, flags...)...)
	if code != exitOK || r.sandbox().Writes() != 0 {
		t.Fatalf("plan: exit %d, %d writes\n%s\n%s", code, r.sandbox().Writes(), out, errs)
	}
	code, out, errs = r.run(nil, append([]string{"sync"}, flags...)...)
	if code != exitOK || !strings.Contains(out, "4 awaiting approval") || len(r.sandbox().ChangeRequests()) != len(crs) {
		t.Fatalf("sync while open: exit %d, %d change requests (filed again?)\n%s\n%s", code, len(r.sandbox().ChangeRequests()), out, errs)
	}

	// Approved in the sandbox: the dependent definition is filed in turn, then approved.
	for i := range 2 {
		code, out, errs = r.run(nil, append([]string{"sync", "--split-sandbox-approve"}, flags...)...)
		if code != exitOK {
			t.Fatalf("sync %d after approval: exit %d\n%s\n%s", i+1, code, out, errs)
		}
	}
	for _, cr := range r.sandbox().ChangeRequests() {
		if cr.Status != splitsandbox.StatusPublished {
			t.Errorf("change request %s (%s): %s, want %s", cr.ID, cr.Flag, cr.Status, splitsandbox.StatusPublished)
		}
	}
	if code, out, _ = r.run(nil, append([]string{"sync"}, flags...)...); code != exitOK || !strings.Contains(out, "already in sync") {
		t.Fatalf("sync after the approvals: exit %d\n%s", code, out)
	}
}

// TestSplitFlagUsageErrors: a key header mode outside the enum, from the command line or
// from its variable, a sandbox flag without --sandbox and a template that does not parse
// are usage errors.
func TestSplitFlagUsageErrors(t *testing.T) {
	for name, c := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"key header":           {nil, []string{"plan", "--sandbox", "--split-key-header", "cookie"}, `--split-key-header or SPLIT_API_KEY_HEADER: key header "cookie": want auto, bearer or x-api-key`},
		"key header variable":  {map[string]string{"SPLIT_API_KEY_HEADER": "cookie"}, []string{"plan", "--sandbox"}, `key header "cookie"`},
		"sandbox flag":         {nil, []string{"sync", "--split-sandbox-approvals", "Production"}, "--split-sandbox-approvals goes with --sandbox"},
		"template":             {nil, []string{"plan", "--sandbox", "--split-comment", "{{.Nope"}, "the comment template (--split-comment or SPLIT_CHANGE_COMMENT)"},
		"template field":       {nil, []string{"sync", "--sandbox", "--split-title", "{{.Author}}"}, "--split-title"},
		"two sandbox settings": {nil, []string{"plan", "--split-sandbox-approve", "--split-sandbox-require-title"}, "--split-sandbox-approve and --split-sandbox-require-title go with --sandbox"},
	} {
		state := filepath.Join(t.TempDir(), "split.json")
		code, _, errs := runWithEnv(c.env, append(c.args, "--repo", splitExample, "--split-sandbox-state", state)...)
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d, want %d\n%s\nwant %q", name, code, exitUsage, errs, c.want)
		}
	}
}

// TestSplitKeyHeaderAnyCase: the key header mode is read ignoring case and spaces, as
// SPLIT_API_KEY_HEADER always was ("X-API-Key", " Bearer"), from the variable and the
// flag, and on a repository without Split files too.
func TestSplitKeyHeaderAnyCase(t *testing.T) {
	for name, c := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"variable":            {map[string]string{"SPLIT_API_KEY_HEADER": "X-API-Key"}, []string{"validate", "--repo", splitExample}},
		"flag":                {nil, []string{"plan", "--sandbox", "--repo", splitExample, "--split-key-header", " Bearer"}},
		"other vendor's repo": {map[string]string{"SPLIT_API_KEY_HEADER": "X-API-KEY"}, []string{"plan", "--sandbox", "--repo", filepath.Join("..", "..", "examples", "flags")}},
	} {
		state := t.TempDir()
		args := append(c.args, "--split-sandbox-state", filepath.Join(state, "split.json"), "--sandbox-state", filepath.Join(state, "k.json"))
		if c.args[0] == "validate" {
			args = c.args
		}
		code, out, errs := runWithEnv(c.env, args...)
		if code != exitOK {
			t.Errorf("%s: exit %d, want 0\n%s\n%s", name, code, out, errs)
		}
	}
}

// TestSplitPlanInANewProcessWithApprovalEnvironments: after a sync filed change
// requests, a plan in a new process with --split-approval-environments (or its
// variable) shows those changes awaiting approval with the requests' ids, as the plan
// comment of a pull request job must; without it, it shows plain creations.
func TestSplitPlanInANewProcessWithApprovalEnvironments(t *testing.T) {
	r := newSplitSandboxRun(t)
	flags := []string{"--split-sandbox-approvals", "Production", "--split-approvers", "lead@example.com"}
	if code, out, errs := r.run(nil, append([]string{"sync"}, flags...)...); code != exitOK || !strings.Contains(out, "awaiting approval") {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errs)
	}
	crs := r.sandbox().ChangeRequests()
	if len(crs) == 0 {
		t.Fatal("no change request filed")
	}
	code, out, errs := r.run(nil, append([]string{"plan"}, flags...)...)
	if code != exitOK || strings.Contains(out, "awaiting approval") {
		t.Fatalf("plan without the declaration: exit %d\n%s\n%s", code, out, errs)
	}
	for name, c := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"flag":     {nil, []string{"--split-approval-environments", "Production"}},
		"variable": {map[string]string{"SPLIT_APPROVAL_ENVIRONMENTS": "Production"}, nil},
	} {
		code, out, errs := r.run(c.env, append(append([]string{"plan"}, flags...), c.args...)...)
		if code != exitOK || !strings.Contains(out, "awaiting approval") || r.sandbox().Writes() != 0 {
			t.Fatalf("%s: plan: exit %d, %d writes\n%s\n%s", name, code, r.sandbox().Writes(), out, errs)
		}
		for _, cr := range crs {
			if !strings.Contains(out, cr.ID) {
				t.Errorf("%s: the plan does not name change request %s (%s):\n%s", name, cr.ID, cr.Flag, out)
			}
		}
	}
	// Its sync files nothing again, writes nothing in Production and exits 0: new_checkout's
	// Production definition, which names beta_gate (IN_SPLIT), waits for beta_gate's
	// change request too (awaiting approval, not refused).
	code, out, errs = r.run(nil, append([]string{"sync", "--split-approval-environments", "Production"}, flags...)...)
	if code != exitOK || strings.Contains(out, "refused") || len(r.sandbox().ChangeRequests()) != len(crs) {
		t.Fatalf("sync: exit %d, %d change requests\n%s\n%s", code, len(r.sandbox().ChangeRequests()), out, errs)
	}
	if !strings.Contains(out, "new_checkout") || !strings.Contains(out, "awaiting approval") {
		t.Errorf("sync: new_checkout is not shown waiting for beta_gate's approval:\n%s", out)
	}
	for _, w := range definitionWrites(r.sandbox()) {
		if w.env == "Production" {
			t.Errorf("%s written in Production while its change request is open", w.flag)
		}
	}
}
