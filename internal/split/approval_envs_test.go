package split_test

// Environments declared to require approvals (SPLIT_APPROVAL_ENVIRONMENTS, the client's
// Config.ApprovalEnvironments): a new process knows them from its first read.

import (
	"net/http"
	"strings"
	"testing"

	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitsandbox "github.com/flagsync/flagsync/internal/split/sandbox"
)

// freshClient is a new client (a new process, as a CI job) on w's sandbox, built from
// the admin key, the sandbox's URL and vars.
func freshClient(t *testing.T, w *e2e, vars map[string]string) *e2e {
	t.Helper()
	env := map[string]string{"SPLIT_ADMIN_API_KEY": splitsandbox.DefaultAPIKey, "SPLIT_API_URL": w.url, "SPLIT_CHANGE_APPROVERS": "lead@example.com"}
	for k, v := range vars {
		env[k] = v
	}
	cfg, err := splitclient.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Budget = splitclient.NewBudget(1000, 100000)
	c, err := splitclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &e2e{sb: w.sb, url: w.url, client: c}
}

// changeRequestPosts counts the change requests filed (POST under /changeRequests) and
// the calls answered 403 in the sandbox's log.
func changeRequestPosts(sb *splitsandbox.Server) (filed, forbidden int) {
	for _, c := range sb.Calls() {
		if c.Method == http.MethodPost && strings.HasPrefix(c.Path, splitclient.ChangeRequestsPath+"/") {
			filed++
		}
		if c.Status == http.StatusForbidden {
			forbidden++
		}
	}
	return filed, forbidden
}

// TestDeclaredApprovalEnvironmentsInANewProcess: a sync files a change request; a new
// process that declares the environment plans the change as awaiting approval with the
// request's id, and its sync writes nothing and files nothing again. A new process that
// does not declare it plans a plain creation, as before.
func TestDeclaredApprovalEnvironmentsInANewProcess(t *testing.T) {
	w := newE2E(t, splitsandbox.Options{ApprovalEnvironments: []string{"Production"}}, map[string]string{"SPLIT_CHANGE_APPROVERS": "lead@example.com"})
	fsys := repo15(map[string]string{"new_checkout.yaml": checkout})
	rep, err := w.sync(t, fsys, false)
	if err != nil || statuses(rep)["awaiting-approval"] != 1 {
		t.Fatalf("first sync: err=%v %v", err, statuses(rep))
	}
	crs := w.sb.ChangeRequests()
	if len(crs) != 1 || crs[0].Environment != "Production" {
		t.Fatalf("change requests: %+v", crs)
	}

	// Undeclared, a new process does not know: a plain creation in its plan.
	undeclared := freshClient(t, w, nil)
	rep, err = undeclared.sync(t, fsys, true)
	if err != nil || len(rep.Plan.Blocked) != 0 || rep.Plan.Summary().Create != 1 {
		t.Fatalf("undeclared plan: err=%v blocked=%+v\n%s", err, rep.Plan.Blocked, render(rep.Plan))
	}

	declared := freshClient(t, w, map[string]string{"SPLIT_APPROVAL_ENVIRONMENTS": " Production ,"})
	w.sb.ResetCalls()
	rep, err = declared.sync(t, fsys, true)
	if err != nil || len(rep.Plan.Blocked) != 1 || string(rep.Plan.Blocked[0].Kind) != "awaiting-approval" ||
		rep.Plan.Blocked[0].ChangeRequest != crs[0].ID || rep.Plan.Summary().Create != 0 ||
		!strings.Contains(rep.Plan.SummaryLine(), "1 change awaiting approval in Split") {
		t.Fatalf("declared plan: err=%v blocked=%+v %q\n%s", err, rep.Plan.Blocked, rep.Plan.SummaryLine(), render(rep.Plan))
	}
	if !strings.Contains(render(rep.Plan), crs[0].ID) {
		t.Errorf("the rendered plan does not name %s:\n%s", crs[0].ID, render(rep.Plan))
	}
	lists := 0
	for _, c := range w.sb.Calls() {
		if c.Method == http.MethodGet && c.Path == splitclient.ChangeRequestsPath {
			lists++
		}
	}
	if lists != 1 {
		t.Errorf("the plan listed change requests %d times, want 1 (one declared environment, one read)", lists)
	}

	// Its sync (a new process again) sends nothing for the change and files nothing.
	declared = freshClient(t, w, map[string]string{"SPLIT_APPROVAL_ENVIRONMENTS": "Production"})
	w.sb.ResetCalls()
	rep, err = declared.sync(t, fsys, false)
	if err != nil || statuses(rep)["awaiting-approval"] != 1 || rep.Converged {
		t.Fatalf("declared sync: err=%v %v converged=%t", err, statuses(rep), rep.Converged)
	}
	filed, forbidden := changeRequestPosts(w.sb)
	if w.sb.Writes() != 0 || filed != 0 || forbidden != 0 || len(w.sb.ChangeRequests()) != 1 {
		t.Fatalf("declared sync: %d writes, %d filed, %d refused with 403, %d change requests\n%s",
			w.sb.Writes(), filed, forbidden, len(w.sb.ChangeRequests()), strings.Join(writesOf(w.sb), "\n"))
	}
}

// TestDeclaredApprovalEnvironmentFilesWithoutA403: in an environment declared to
// require approvals, the first definition write is filed as a change request without
// being sent (no 403); the other environment is written directly. Undeclared, the same
// sync gets the 403 first.
func TestDeclaredApprovalEnvironmentFilesWithoutA403(t *testing.T) {
	for _, declare := range []bool{false, true} {
		vars := map[string]string{"SPLIT_CHANGE_APPROVERS": "lead@example.com"}
		if declare {
			vars["SPLIT_APPROVAL_ENVIRONMENTS"] = "Production"
		}
		w := newE2E(t, splitsandbox.Options{ApprovalEnvironments: []string{"Production"}}, vars)
		fsys := repo15(map[string]string{"new_checkout.yaml": checkout})
		rep, err := w.sync(t, fsys, false)
		st := statuses(rep)
		if err != nil || st["applied"] != 2 || st["awaiting-approval"] != 1 || st["failed"] != 0 {
			t.Fatalf("declared %t: err=%v %v\n%s", declare, err, st, strings.Join(writesOf(w.sb), "\n"))
		}
		crs := w.sb.ChangeRequests()
		if len(crs) != 1 || crs[0].Environment != "Production" || crs[0].OperationType != "CREATE" || crs[0].Flag != "new_checkout" {
			t.Fatalf("declared %t: change requests %+v", declare, crs)
		}
		direct := 0
		for _, c := range w.sb.Calls() {
			if c.Method != http.MethodGet && strings.HasSuffix(c.Path, "/environments/Production") && strings.HasPrefix(c.Path, splitclient.APIPrefix+"/splits/") {
				direct++
			}
		}
		filed, forbidden := changeRequestPosts(w.sb)
		want := 1 // the direct write, refused with 403
		if declare {
			want = 0
		}
		if direct != want || forbidden != want || filed != 1 {
			t.Errorf("declared %t: %d direct writes in Production, %d answered 403, %d filed; want %d, %d, 1\n%s",
				declare, direct, forbidden, filed, want, want, strings.Join(writesOf(w.sb), "\n"))
		}
	}
}
