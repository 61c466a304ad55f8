package unleash_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flagsync/flagsync/internal/apply"
	"github.com/flagsync/flagsync/internal/codehost/codehosttest"
	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/plan"
	"github.com/flagsync/flagsync/internal/reconcile"
	"github.com/flagsync/flagsync/internal/unleash/unleashtest"
)

// The command-level tests build cmd/flagsync once per test process and run it as a user
// would, with UNLEASH_URL pointing at the counting proxy in front of the real server:
// every path from the command line to the provider, the registry and the pipeline is the
// shipped one.

var built struct {
	once sync.Once
	dir  string // removed by TestMain
	path string
	err  error
}

// flagsyncBinary builds cmd/flagsync (once) and returns its path.
func flagsyncBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			built.err = err
			return
		}
		if built.dir, built.err = os.MkdirTemp("", "flagsync-unleash-bin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "flagsync")
		cmd := exec.Command(goTool, "build", "-o", built.path, "./cmd/flagsync")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = errors.New("go build ./cmd/flagsync: " + err.Error() + "\n" + string(out))
		}
	})
	if built.err != nil {
		t.Fatalf("build flagsync: %v", built.err)
	}
	return built.path
}

// removeBinary removes what flagsyncBinary built.
func removeBinary() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}

// binary runs the flagsync command against one Unleash server.
type binary struct {
	path  string
	repo  string   // the repository folder syncs read (--repo); the flag files are under flags/
	env   []string // the commands' whole environment
	token string   // the admin token: no output may show it
}

// newBinary prepares the command for server url (the proxy's) with token, given as a
// file (UNLEASH_ADMIN_TOKEN_FILE, as a Kubernetes secret would be).
func newBinary(t *testing.T, url, token string) *binary {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "unleash-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	return &binary{path: flagsyncBinary(t), repo: filepath.Join(dir, "repo"), token: token, env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + os.TempDir(),
		"UNLEASH_URL=" + url, "UNLEASH_ADMIN_TOKEN_FILE=" + tokenFile,
	}}
}

// result is what one command did.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return "flagsync " + strings.Join(r.args, " ") + ": exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// run runs the command in dir ("" for the repository folder) with extra environment
// variables, and checks that its output never shows the token.
func (b *binary) run(t *testing.T, dir string, extraEnv []string, args ...string) result {
	t.Helper()
	if dir == "" {
		dir = b.repo
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.path, args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string(nil), b.env...), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{args: args, stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("flagsync %s: %v", strings.Join(args, " "), err)
	}
	if strings.Contains(r.stdout+r.stderr, b.token) {
		t.Errorf("flagsync %s printed the admin token", strings.Join(args, " "))
	}
	return r
}

// want runs a command and fails the test unless it exits with code.
func (b *binary) want(t *testing.T, code int, args ...string) result {
	t.Helper()
	r := b.run(t, "", nil, args...)
	if r.code != code {
		t.Fatalf("want exit %d from %s", code, r)
	}
	return r
}

// writeRepo writes fsys (paths under flags/) as the repository folder, replacing what was
// there, so that a file deleted from fsys is deleted on disk.
func (b *binary) writeRepo(t *testing.T, fsys fstest.MapFS) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(b.repo, "flags")); err != nil {
		t.Fatal(err)
	}
	for name, f := range fsys {
		p := filepath.Join(b.repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// jsonReport is what flagsync sync --format json prints, read back (each result is left
// out: its identity is the plan's change).
type jsonReport struct {
	DryRun      bool              `json:"dryRun"`
	Diagnostics []diag.Diagnostic `json:"diagnostics"`
	Plan        plan.Plan         `json:"plan"`
	Summary     apply.Summary     `json:"summary"`
	Verified    bool              `json:"verified"`
	Remaining   []plan.Change     `json:"remaining"`
	Converged   bool              `json:"converged"`
	APICalls    int64             `json:"apiCalls"`
	Refused     []plan.Blocked    `json:"refused"`
	Error       string            `json:"error"`
}

// sync writes fsys and runs flagsync sync --format json (with --dry-run and --prune as in
// says), and returns its report as reconcile.Report and the error it reported. The exit
// code must agree with the report: 0 for a run that stopped on nothing, failed nothing
// and converged (or was a dry run), else 1.
func (b *binary) sync(t *testing.T, fsys fstest.MapFS, in reconcile.Input) (*reconcile.Report, error) {
	t.Helper()
	if len(in.Only) > 0 {
		t.Fatal("a partial run is the daemon's: see TestDaemonSyncsUnleashFlags")
	}
	b.writeRepo(t, fsys)
	args := []string{"sync", "--repo", b.repo, "--path", "flags", "--format", "json", "--log-level", "warn"}
	if in.DryRun {
		args = append(args, "--dry-run")
	}
	if in.Prune {
		args = append(args, "--prune")
	}
	r := b.run(t, "", nil, args...)
	var out jsonReport
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("the JSON report does not decode: %v\n%s", err, r)
	}
	rep := &reconcile.Report{DryRun: out.DryRun, Diagnostics: out.Diagnostics, Plan: out.Plan, Summary: out.Summary,
		Verified: out.Verified, Remaining: out.Remaining, Converged: out.Converged, APICalls: out.APICalls, Refused: out.Refused}
	var err error
	if out.Error != "" {
		err = errors.New(out.Error)
	}
	want := 0
	if err != nil || rep.Summary.Failed > 0 || (!rep.DryRun && !rep.Converged) {
		want = 1
	}
	if r.code != want {
		t.Errorf("exit %d, want %d for this report: %s", r.code, want, r)
	}
	return rep, err
}

// TestEndToEndThroughTheBinary runs examples/unleash through the flagsync command against
// the real unleash-server (a server of its own: TestEndToEnd has the shared one's default
// project): validate, plan (text, --detailed-exitcode, Markdown with --json-out read by
// flagsync comment), --sandbox refused, then every step of endToEnd with flagsync sync
// --format json, the export round trip with flagsync export and plan, and a text sync that
// writes nothing.
func TestEndToEndThroughTheBinary(t *testing.T) {
	s := unleashtest.StartDedicated(t)
	w := newWorldOn(t, s)
	w.bin = newBinary(t, w.proxy, s.AdminToken)
	w.bin.writeRepo(t, w.fsys)

	t.Run("validate", func(t *testing.T) {
		r := w.bin.want(t, 0, "validate", "--path", "flags")
		if !strings.Contains(r.stdout, "5 flag files valid (1 project)") {
			t.Errorf("validate: %s", r)
		}
		broken := w.fsys["flags/dark-mode.yaml"]
		w.edit(t, "dark-mode.yaml", "rollout: 10", "rollout: 140")
		w.bin.writeRepo(t, w.fsys)
		r = w.bin.want(t, 1, "validate", "--path", "flags")
		if !strings.Contains(r.stdout+r.stderr, "flags/dark-mode.yaml:14:31: environments.production.strategies[0].parameters.rollout: rollout is a percentage") {
			t.Errorf("validate of a broken file: %s", r)
		}
		w.fsys["flags/dark-mode.yaml"] = broken
		w.bin.writeRepo(t, w.fsys)
		if calls := w.calls.reset(); len(calls) != 0 {
			t.Errorf("validate called Unleash: %v", calls)
		}
	})

	t.Run("plan: text, exit codes, nothing written", func(t *testing.T) {
		r := w.bin.want(t, 0, "plan", "--path", "flags")
		for _, want := range []string{"Plan: 15 to create, 11 to update, 0 to archive.", "default/new-checkout", "POST /api/admin/projects/default/features"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("plan lacks %q: %s", want, r)
			}
		}
		w.bin.want(t, 2, "plan", "--path", "flags", "--detailed-exitcode")
		if calls := w.calls.reset(); len(writes(calls)) != 0 || reads(calls) != 6 {
			t.Errorf("two plans: %v; want 3 reads each and no write", calls)
		}
	})

	t.Run("plan for a pull request: Markdown, JSON, flagsync comment", func(t *testing.T) {
		dir := t.TempDir()
		md, js := filepath.Join(dir, "plan.md"), filepath.Join(dir, "plan.json")
		w.bin.want(t, 0, "plan", "--path", "flags", "--format", "markdown", "--out", md, "--json-out", js)
		var doc struct {
			FormatVersion int    `json:"format_version"`
			Service       string `json:"service"`
			Summary       struct {
				Create, Update int
			} `json:"summary"`
			Changes []struct {
				Service, Scope, Key string
			} `json:"changes"`
		}
		raw, err := os.ReadFile(js)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &doc); err != nil || doc.FormatVersion != plan.JSONFormatVersion || doc.Service != "Unleash" ||
			doc.Summary.Create != 15 || len(doc.Changes) != 26 || doc.Changes[0].Service != "Unleash" || doc.Changes[0].Scope != "default" {
			t.Fatalf("plan.json: %v %+v", err, doc)
		}
		gh := codehosttest.NewGitHub("acme/flags")
		gh.AddToken("gh-token", codehosttest.GitHubAccount{ID: 9, Login: "octocat"})
		srv := gh.Start(t)
		sha := strings.Repeat("c", 40)
		r := w.bin.run(t, w.bin.repo, []string{"FLAGSYNC_COMMENT_TOKEN=gh-token"}, "comment", "--provider", "github", "--api-url", srv.URL,
			"--repo-slug", "acme/flags", "--number", "7", "--sha", sha, "--file", md, "--plan-json", js, "--path", "flags")
		if r.code != 0 {
			t.Fatalf("comment: %s", r)
		}
		cs := gh.Comments(7)
		if len(cs) != 1 || !strings.Contains(cs[0].Body, "Unleash") || !strings.Contains(cs[0].Body, "15 to create") || !strings.Contains(cs[0].Body, "default/new-checkout") {
			t.Errorf("comments %+v", cs)
		}
		// A user's token may not create check runs: the plan's status is a commit status.
		st := gh.Statuses()
		if len(st) != 1 || st[0].SHA != sha || st[0].State != "success" || !strings.Contains(st[0].Description, "15 to create, 11 to update") {
			t.Errorf("statuses %+v\n%s", st, r)
		}
		if calls := w.calls.reset(); len(writes(calls)) != 0 || reads(calls) != 3 {
			t.Errorf("plan and comment: %v; want the plan's 3 reads", calls)
		}
	})

	t.Run("--sandbox: a usage error saying what to do, nothing called", func(t *testing.T) {
		// The provider's error is a *provider.UsageError; sandbox exits 64 with it, plan and
		// run (whose connect step reports it) exit 1 today: the message is what counts.
		r := w.bin.run(t, "", nil, "plan", "--path", "flags", "--sandbox")
		if r.code == 0 {
			t.Errorf("plan --sandbox succeeded: %s", r)
		}
		for _, want := range []string{"5 Unleash flag files", "Unleash has no embedded sandbox", "UNLEASH_URL", "without --sandbox"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("plan --sandbox lacks %q: %s", want, r)
			}
		}
		r = w.bin.want(t, 64, "sandbox", "--vendor", "unleash")
		if !strings.Contains(r.stderr, "Unleash has no embedded sandbox") {
			t.Errorf("sandbox --vendor unleash: %s", r)
		}
		r = w.bin.run(t, "", nil, "run", "--repo", w.bin.repo, "--path", "flags", "--sandbox")
		if r.code == 0 || !strings.Contains(r.stderr, "Unleash has no embedded sandbox") {
			t.Errorf("run --sandbox: %s", r)
		}
		if calls := w.calls.reset(); len(calls) != 0 {
			t.Errorf("--sandbox called Unleash: %v", calls)
		}
	})

	endToEnd(t, w)

	t.Run("text sync of an unchanged repository writes nothing", func(t *testing.T) {
		w.bin.writeRepo(t, w.fsys)
		r := w.bin.want(t, 0, "sync", "--path", "flags", "--log-level", "warn")
		if !strings.Contains(r.stdout, "No changes.") || !strings.Contains(r.stdout, "Unleash ("+w.proxy+")") || !strings.Contains(r.stdout, "already in sync") {
			t.Errorf("text sync: %s", r)
		}
		if calls := w.calls.reset(); len(writes(calls)) != 0 {
			t.Errorf("writes %v", writes(calls))
		}
	})
}

// exportRoundTrip exports the project with flagsync export, plans the files with flagsync
// plan (no change, nothing written), exports again with --force into another folder (the
// same bytes) and refuses to overwrite without it.
func (b *binary) exportRoundTrip(t *testing.T, w *world) {
	out := filepath.Join(t.TempDir(), "exported")
	r := b.want(t, 0, "export", "--vendor", "unleash", "--project", "default", "--out", out, "--schema", "none")
	if !strings.Contains(r.stdout, "Exported 5 flags from project default into "+out+": 6 files") ||
		!strings.Contains(r.stdout, "The files are valid and plan to no change.") {
		t.Errorf("export: %s", r)
	}
	calls := w.calls.reset()
	if len(writes(calls)) != 0 {
		t.Errorf("export wrote %v", writes(calls))
	}
	t.Logf("flagsync export of 5 flags: %d calls", len(calls))
	r = b.want(t, 0, "plan", "--repo", out, "--detailed-exitcode")
	if !strings.Contains(r.stdout, "No changes.") {
		t.Errorf("plan of the export: %s", r)
	}
	if calls := w.calls.reset(); len(writes(calls)) != 0 {
		t.Errorf("the plan of the export wrote %v", writes(calls))
	}
	again := filepath.Join(t.TempDir(), "again")
	b.want(t, 0, "export", "--vendor", "unleash", "--project", "default", "--out", again, "--schema", "none", "--force")
	for _, name := range []string{"flagsync.yaml", "dark-mode.yaml", "new-checkout.yaml", "express-payment.yaml", "maintenance-banner.yaml", "made-in-the-ui.yaml"} {
		x, errX := os.ReadFile(filepath.Join(out, name))
		y, errY := os.ReadFile(filepath.Join(again, name))
		if errX != nil || errY != nil || !bytes.Equal(x, y) {
			t.Errorf("%s: the exports differ (%v, %v)", name, errX, errY)
		}
	}
	r = b.want(t, 1, "export", "--vendor", "unleash", "--out", out, "--schema", "none")
	if !strings.Contains(r.stderr, "already holds 6 of the files: nothing was written") {
		t.Errorf("export over an export: %s", r)
	}
	w.calls.reset()
}
