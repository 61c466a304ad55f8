package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/codehost/codehosttest"
)

// These tests run the shipped CI files' own shell commands, in order, with the flagsync
// built from this checkout on PATH, `flagsync sandbox` as Kameleoon, and fake GitHub and
// GitLab APIs, against an example repository: one whose files are invalid, one whose
// flags are all to be created, and one planned with wrong credentials. Only the step that installs flagsync with `go install` is
// not run (flagsync is already on PATH); actions (`uses:`) are not run either.

const (
	prNumber    = 7
	prRepo      = "acme/flags"
	actionsTok  = "ghs_actions_token_canary"
	gitlabTok   = "glpat-project-bot-canary"
	brokenLine  = "    defaultVariationKey: off"
	brokenValue = "    defaultVariationKey: nope"
)

// startSandboxProcess runs `flagsync sandbox` on a free loopback port until the test
// ends and returns its URL.
func startSandboxProcess(t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "flagsync"), "sandbox", "--listen", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = []string{"PATH=" + bin, "HOME=" + t.TempDir()}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg, URL string
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "sandbox listening" {
				urls <- line.URL
			}
		}
		close(urls)
		// Keep draining, so the sandbox never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case u, ok := <-urls:
		if !ok {
			t.Fatal("flagsync sandbox exited without listening")
		}
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("flagsync sandbox did not say where it listens")
	}
	return ""
}

// exampleRepository copies examples/flags into a new Git repository at flagsPath,
// breaking dark_mode.yaml when invalid, and returns its folder, its commit and the line
// of the break (0 when valid).
func exampleRepository(t *testing.T, flagsPath string, invalid bool) (dir, sha string, line int) {
	t.Helper()
	dir = t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, flagsPath), os.DirFS("../../examples/flags")); err != nil {
		t.Fatal(err)
	}
	if invalid {
		file := filepath.Join(dir, flagsPath, "dark_mode.yaml")
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if lines[i] == brokenLine {
				lines[i], line = brokenValue, i+1
				break
			}
		}
		if line == 0 {
			t.Fatalf("examples/flags/dark_mode.yaml has no line %q to break", brokenLine)
		}
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "feature")
	git("add", "-A")
	git("commit", "-q", "-m", "flags")
	return dir, git("rev-parse", "HEAD"), line
}

// scenario is what the CI job meets.
type scenario int

const (
	invalidFiles     scenario = iota // dark_mode.yaml names an unknown variation
	validWithChanges                 // every flag is to be created
	planFails                        // the read-only credentials are wrong: plan writes no plan
)

// secret is the read-only client secret the scenario's CI job has.
func (s scenario) secret() string {
	if s == planFails {
		return "not-the-secret"
	}
	return "sandbox"
}

func TestPlanWorkflows(t *testing.T) {
	if testing.Short() {
		t.Skip("builds flagsync and runs the CI files' commands")
	}
	for _, tool := range []string{"bash", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s on PATH", tool)
		}
	}
	bin := filepath.Dir(buildFlagsync(t)) // the folder put on PATH
	for _, c := range []struct {
		name string
		s    scenario
	}{{"invalid files", invalidFiles}, {"valid files with changes", validWithChanges}, {"plan fails", planFails}} {
		t.Run("github/"+c.name, func(t *testing.T) { testGitHubPlanWorkflow(t, bin, c.s) })
		t.Run("gitlab/"+c.name, func(t *testing.T) { testGitLabPlanJob(t, bin, c.s) })
	}
}

// ghWorkflow is what the test reads of a GitHub Actions workflow.
type ghWorkflow struct {
	Env         map[string]string `yaml:"env"`
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		Env   map[string]string `yaml:"env"`
		Steps []ghStep          `yaml:"steps"`
	} `yaml:"jobs"`
}

type ghStep struct {
	ID              string            `yaml:"id"`
	Name            string            `yaml:"name"`
	If              string            `yaml:"if"`
	Uses            string            `yaml:"uses"`
	Run             string            `yaml:"run"`
	Shell           string            `yaml:"shell"`
	Env             map[string]string `yaml:"env"`
	ContinueOnError bool              `yaml:"continue-on-error"`
}

// ghStepResult is a finished step, as `steps.<id>` shows it.
type ghStepResult struct {
	outcome string // success, failure or skipped
	outputs map[string]string
}

// ghRun is one run of a job: the contexts expressions read, and the steps so far.
type ghRun struct {
	t         testing.TB
	workspace string
	github    map[string]any
	secrets   map[string]string
	env       map[string]string
	steps     map[string]ghStepResult
	failed    bool // a step failed: success() is false from then on
	ran       []string
	log       strings.Builder // every step's output
}

func testGitHubPlanWorkflow(t *testing.T, bin string, s scenario) {
	raw, err := os.ReadFile(filepath.Join(deployDir, "github-actions", "flagsync-plan.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf ghWorkflow
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatal(err)
	}
	if len(wf.Jobs) != 1 {
		t.Fatalf("%d jobs: the test runs the one plan job", len(wf.Jobs))
	}
	flagsPath := wf.Env["FLAGS_PATH"]
	if flagsPath == "" {
		t.Fatal("the workflow sets no FLAGS_PATH")
	}
	workspace, headSHA, badLine := exampleRepository(t, flagsPath, s == invalidFiles)
	sandboxURL := startSandboxProcess(t, bin)

	// GITHUB_TOKEN gets exactly the permissions the workflow declares.
	gh := codehosttest.NewGitHub(prRepo)
	gh.AddToken(actionsTok, codehosttest.ActionsToken(wf.Permissions["pull-requests"] == "write", wf.Permissions["checks"] == "write", wf.Permissions["statuses"] == "write"))
	person := codehosttest.GitHubAccount{ID: 9, Login: "octocat"}
	foreignBody := "<!-- flagsync-plan -->\nI pasted an old plan here; keep my comment."
	foreign := gh.AddComment(prNumber, person, foreignBody)
	srv := gh.Start(t)

	runner := t.TempDir()
	event := map[string]any{
		"action": "synchronize", "number": prNumber,
		"pull_request": map[string]any{"number": prNumber, "head": map[string]any{"sha": headSHA, "repo": map[string]any{"full_name": prRepo}}},
	}
	eventPath := filepath.Join(runner, "event.json")
	eb, _ := json.Marshal(event)
	os.WriteFile(eventPath, eb, 0o600)
	summary := filepath.Join(runner, "step_summary.md")
	r := &ghRun{
		t: t, workspace: workspace,
		github:  map[string]any{"repository": prRepo, "event_name": "pull_request", "event": event},
		secrets: map[string]string{"KAMELEOON_READONLY_CLIENT_ID": "sandbox", "KAMELEOON_READONLY_CLIENT_SECRET": s.secret(), "GITHUB_TOKEN": actionsTok},
		env: map[string]string{
			"PATH": bin + ":/usr/local/bin:/usr/bin:/bin", "HOME": runner, "CI": "true", "GITHUB_ACTIONS": "true",
			"GITHUB_WORKSPACE": workspace, "GITHUB_EVENT_PATH": eventPath, "GITHUB_EVENT_NAME": "pull_request",
			"GITHUB_REPOSITORY": prRepo, "GITHUB_API_URL": srv.URL, "GITHUB_SERVER_URL": "https://github.example",
			"GITHUB_RUN_ID": "4242", "GITHUB_SHA": strings.Repeat("e", 40), "GITHUB_STEP_SUMMARY": summary,
			"RUNNER_TEMP": runner,
			// The runner's environment: Kameleoon is the sandbox.
			"KAMELEOON_API_URL": sandboxURL,
		},
		steps: map[string]ghStepResult{},
	}
	for _, job := range wf.Jobs {
		for k, v := range wf.Env {
			r.env[k] = r.interpolate(v)
		}
		for k, v := range job.Env {
			r.env[k] = r.interpolate(v)
		}
		installs := 0
		for i, st := range job.Steps {
			if isInstallStep(st) {
				installs++
				continue
			}
			r.step(i, st)
		}
		if installs != 1 {
			t.Fatalf("%d steps install flagsync with go install: want exactly one (the one the test replaces)", installs)
		}
	}
	t.Logf("steps run: %s", strings.Join(r.ran, ", "))
	if strings.Contains(r.log.String(), actionsTok) {
		t.Error("a step printed GITHUB_TOKEN")
	}

	if want := s != validWithChanges; r.failed != want {
		t.Errorf("the job failed: %v; want %v", r.failed, want)
	}
	cs := gh.Comments(prNumber)
	if len(cs) != 2 || cs[0].ID != foreign || cs[0].Body != foreignBody {
		t.Fatalf("comments %+v: want octocat's, untouched, and flagsync's", cs)
	}
	ours := cs[1]
	runs := gh.CheckRuns()
	if len(runs) != 1 {
		t.Fatalf("check runs %+v: want one", runs)
	}
	run := runs[0]
	if ours.User.Login != "github-actions[bot]" || run.Name != "flagsync plan" || run.HeadSHA != headSHA ||
		run.DetailsURL != "https://github.example/"+prRepo+"/actions/runs/4242" {
		t.Fatalf("comment by %s, check run %+v", ours.User.Login, run)
	}
	stepSummary, _ := os.ReadFile(summary)
	switch s {
	case planFails:
		if run.Conclusion != "failure" || run.Title != "flagsync plan did not finish: no plan was written" ||
			!strings.Contains(ours.Body, "did not finish") || !strings.Contains(ours.Body, run.DetailsURL) {
			t.Fatalf("check run %+v, comment %q: want both to say the plan did not finish, with a link to the run", run, ours.Body)
		}
		return
	case invalidFiles:
		problem := fmt.Sprintf("%s/dark_mode.yaml:%d:", flagsPath, badLine)
		for what, text := range map[string]string{"comment": ours.Body, "check run summary": run.Summary, "job summary": string(stepSummary)} {
			if !strings.Contains(text, "the flag files are invalid") || !strings.Contains(text, problem) || !strings.Contains(text, `unknown variation "nope"`) {
				t.Errorf("%s lacks the problem list (%s...):\n%s", what, problem, text)
			}
		}
		if run.Conclusion != "failure" || run.Title != "The flag files are invalid: 1 problem in 1 file" || len(run.Annotations) != 1 {
			t.Fatalf("check run %+v: want a failure with one annotation", run)
		}
		if a := run.Annotations[0]; a.Path != flagsPath+"/dark_mode.yaml" || a.StartLine != badLine || a.AnnotationLevel != "failure" ||
			!strings.Contains(a.Message, `unknown variation "nope"`) {
			t.Fatalf("annotation %+v: want %s/dark_mode.yaml line %d", a, flagsPath, badLine)
		}
		return
	}
	if rev := "for `" + headSHA[:7] + "`"; !strings.Contains(ours.Body, rev) {
		t.Errorf("the comment does not name the commit (%s) as it is, without +dirty:\n%s", rev, ours.Body)
	}
	if got := r.steps["plan"].outputs["exitcode"]; got != "2" {
		t.Errorf("plan step's exitcode output %q: want 2 (changes)", got)
	}
	if run.Conclusion != "success" || !strings.HasPrefix(run.Title, "Plan: ") || !strings.Contains(run.Title, " to create") || len(run.Annotations) != 0 {
		t.Fatalf("check run %+v: want success titled with the summary line", run)
	}
	for what, text := range map[string]string{"comment": ours.Body, "check run summary": run.Summary, "job summary": string(stepSummary)} {
		if !strings.Contains(text, "**"+run.Title+"**") || !strings.Contains(text, "dark_mode") {
			t.Errorf("%s lacks the plan (%q):\n%s", what, run.Title, text)
		}
	}
	if strings.Contains(ours.Body, actionsTok) || strings.Contains(run.Summary, actionsTok) {
		t.Error("the token was posted")
	}
}

// isInstallStep reports whether st installs flagsync from the module proxy: the one
// step the test does not run, as flagsync is already built.
func isInstallStep(st ghStep) bool {
	return strings.Contains(st.Run, "go install") && strings.Contains(st.Run, "/cmd/flagsync@")
}

// step runs one step as the runner would: its condition, its environment, then its
// action or script.
func (r *ghRun) step(i int, st ghStep) {
	t := r.t
	t.Helper()
	label := st.Name
	if label == "" {
		label = st.Uses
	}
	cond := strings.TrimSpace(st.If)
	if cond == "" {
		cond = "success()"
	}
	cond = strings.TrimSuffix(strings.TrimPrefix(cond, "${{"), "}}")
	if !regexp.MustCompile(`\b(success|failure|always|cancelled)\(`).MatchString(cond) {
		cond = "success() && (" + cond + ")"
	}
	res := ghStepResult{outcome: "skipped", outputs: map[string]string{}}
	if truthy(r.eval(cond)) {
		r.ran = append(r.ran, label)
		res.outcome = r.exec(i, st, label)
	}
	if res.outcome == "failure" && !st.ContinueOnError {
		r.failed = true
	}
	if st.ID != "" {
		out := filepath.Join(r.env["RUNNER_TEMP"], fmt.Sprintf("output_%d", i))
		if b, err := os.ReadFile(out); err == nil {
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if k, v, ok := strings.Cut(l, "="); ok {
					res.outputs[k] = v
				} else if l != "" {
					t.Fatalf("step %q: GITHUB_OUTPUT line %q is not NAME=VALUE (the test reads only that form)", label, l)
				}
			}
		}
		r.steps[st.ID] = res
	}
}

// exec runs a step whose condition held and returns its outcome.
func (r *ghRun) exec(i int, st ghStep, label string) string {
	t := r.t
	switch {
	case st.Uses != "":
		// Actions are not run: the workspace is already checked out, flagsync already
		// built, and artifacts are not kept.
		name, _, _ := strings.Cut(st.Uses, "@")
		switch name {
		case "actions/checkout", "actions/setup-go", "actions/upload-artifact":
			return "success"
		}
		t.Fatalf("step %q uses %s, which the test does not know", label, st.Uses)
	case st.Run == "":
		t.Fatalf("step %q has neither run nor uses", label)
	case st.Shell != "" && st.Shell != "bash":
		t.Fatalf("step %q runs in %s; the test runs bash", label, st.Shell)
	case strings.Contains(st.Run, "${{"):
		t.Fatalf("step %q puts an expression in its script; pass it through env instead (script injection)", label)
	}
	script := filepath.Join(r.env["RUNNER_TEMP"], fmt.Sprintf("step_%d.sh", i))
	if err := os.WriteFile(script, []byte(st.Run), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range r.env {
		env[k] = v
	}
	env["GITHUB_OUTPUT"] = filepath.Join(r.env["RUNNER_TEMP"], fmt.Sprintf("output_%d", i))
	for k, v := range st.Env {
		env[k] = r.interpolate(v)
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	// GitHub's default shell on Linux.
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
	cmd.Dir, cmd.Env = r.workspace, list
	out, err := cmd.CombinedOutput()
	t.Logf("step %q:\n%s", label, out)
	r.log.Write(out)
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("step %q: %v", label, err)
		}
		return "failure"
	}
	return "success"
}

// interpolate replaces each ${{ expression }} in s by its value.
func (r *ghRun) interpolate(s string) string {
	return regexp.MustCompile(`\$\{\{(.*?)\}\}`).ReplaceAllStringFunc(s, func(m string) string {
		v := r.eval(m[3 : len(m)-2])
		switch x := v.(type) {
		case nil:
			return ""
		case bool:
			return strconv.FormatBool(x)
		case string:
			return x
		}
		r.t.Fatalf("expression %q: a %T cannot go into a string here", m, v)
		return ""
	})
}

// eval evaluates a GitHub Actions expression: exactly the forms the shipped workflows
// use (contexts github, secrets, steps and env; string literals; ==, !=, !, && and ||;
// parentheses; always(), success(), failure(), cancelled() and hashFiles()). Anything
// else fails the test, so the workflow cannot use what the test would get wrong.
func (r *ghRun) eval(expr string) any {
	r.t.Helper()
	p := &exprParser{r: r, src: expr, toks: r.tokens(expr)}
	v := p.or()
	if p.pos != len(p.toks) {
		r.t.Fatalf("expression %q: unexpected %q", expr, p.toks[p.pos])
	}
	return v
}

var exprTokenRE = regexp.MustCompile(`^\s*(?:('(?:[^']|'')*')|(==|!=|&&|\|\||!|\(|\)|,)|([A-Za-z_][A-Za-z0-9_.-]*))`)

func (r *ghRun) tokens(expr string) []string {
	var toks []string
	rest := expr
	for strings.TrimSpace(rest) != "" {
		m := exprTokenRE.FindStringSubmatch(rest)
		if m == nil {
			r.t.Fatalf("expression %q: the test cannot read %q", expr, strings.TrimSpace(rest))
		}
		toks = append(toks, strings.TrimLeftFunc(m[0], unicode.IsSpace))
		rest = rest[len(m[0]):]
	}
	return toks
}

type exprParser struct {
	r    *ghRun
	src  string
	toks []string
	pos  int
}

func (p *exprParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *exprParser) next() string {
	tok := p.peek()
	p.pos++
	return tok
}

func (p *exprParser) expect(tok string) {
	if got := p.next(); got != tok {
		p.r.t.Fatalf("expression %q: want %q, got %q", p.src, tok, got)
	}
}

func (p *exprParser) or() any {
	v := p.and()
	for p.peek() == "||" {
		p.next()
		w := p.and()
		if !truthy(v) {
			v = w
		}
	}
	return v
}

func (p *exprParser) and() any {
	v := p.compare()
	for p.peek() == "&&" {
		p.next()
		w := p.compare()
		if truthy(v) {
			v = w
		}
	}
	return v
}

func (p *exprParser) compare() any {
	v := p.unary()
	for op := p.peek(); op == "==" || op == "!="; op = p.peek() {
		p.next()
		w := p.unary()
		vs, ok1 := v.(string)
		ws, ok2 := w.(string)
		if !ok1 || !ok2 {
			p.r.t.Fatalf("expression %q: the test compares strings only, not %T %s %T", p.src, v, op, w)
		}
		// GitHub compares strings ignoring case.
		v = strings.EqualFold(vs, ws) == (op == "==")
	}
	return v
}

func (p *exprParser) unary() any {
	if p.peek() == "!" {
		p.next()
		return !truthy(p.unary())
	}
	return p.primary()
}

func (p *exprParser) primary() any {
	t := p.r.t
	tok := p.next()
	switch {
	case tok == "(":
		v := p.or()
		p.expect(")")
		return v
	case strings.HasPrefix(tok, "'"):
		return strings.ReplaceAll(tok[1:len(tok)-1], "''", "'")
	case tok == "true" || tok == "false":
		return tok == "true"
	case tok == "null":
		return nil
	case p.peek() == "(":
		p.next()
		var args []any
		for p.peek() != ")" {
			args = append(args, p.or())
			if p.peek() == "," {
				p.next()
			}
		}
		p.expect(")")
		return p.call(tok, args)
	case tok != "" && (unicode.IsLetter(rune(tok[0])) || tok[0] == '_'):
		return p.lookup(tok)
	}
	t.Fatalf("expression %q: unexpected %q", p.src, tok)
	return nil
}

func (p *exprParser) call(name string, args []any) any {
	t := p.r.t
	switch name {
	case "always":
		return true
	case "success":
		return !p.r.failed
	case "failure":
		return p.r.failed
	case "cancelled":
		return false
	case "hashFiles":
		if len(args) != 1 {
			t.Fatalf("expression %q: the test's hashFiles takes one path", p.src)
		}
		pattern, _ := args[0].(string)
		if strings.ContainsAny(pattern, "*?[!") {
			t.Fatalf("expression %q: the test's hashFiles takes a plain path, not a pattern", p.src)
		}
		// '' when nothing matches; else a hash of the hashes of the files.
		b, err := os.ReadFile(filepath.Join(p.r.workspace, pattern))
		if err != nil {
			return ""
		}
		one := sha256.Sum256(b)
		all := sha256.Sum256(one[:])
		return hex.EncodeToString(all[:])
	}
	t.Fatalf("expression %q: the test does not know the function %s()", p.src, name)
	return nil
}

// lookup reads a context property: github.event.pull_request.number, steps.plan.outcome.
func (p *exprParser) lookup(path string) any {
	t := p.r.t
	parts := strings.Split(path, ".")
	switch parts[0] {
	case "github":
		var v any = p.r.github
		for _, k := range parts[1:] {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		if n, ok := v.(int); ok {
			return strconv.Itoa(n)
		}
		return v
	case "secrets", "env":
		if len(parts) != 2 {
			t.Fatalf("expression %q: %s takes one name", p.src, parts[0])
		}
		if parts[0] == "env" {
			return p.r.env[parts[1]]
		}
		v, ok := p.r.secrets[parts[1]]
		if !ok {
			t.Fatalf("expression %q: the test has no secret %s", p.src, parts[1])
		}
		return v
	case "steps":
		if len(parts) < 3 {
			t.Fatalf("expression %q: want steps.ID.outcome, .conclusion or .outputs.NAME", p.src)
		}
		res, ok := p.r.steps[parts[1]]
		if !ok {
			t.Fatalf("expression %q: no earlier step has id %q", p.src, parts[1])
		}
		switch {
		case len(parts) == 3 && (parts[2] == "outcome" || parts[2] == "conclusion"):
			return res.outcome
		case len(parts) == 4 && parts[2] == "outputs":
			return res.outputs[parts[3]]
		}
	}
	t.Fatalf("expression %q: the test does not know %s", p.src, path)
	return nil
}

// truthy is how an expression's value counts as a condition.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	}
	return true
}

// TestWorkflowExpressionEvaluator proves the evaluator gets the workflow's forms right
// and refuses what it does not know.
func TestWorkflowExpressionEvaluator(t *testing.T) {
	ws := t.TempDir()
	os.WriteFile(filepath.Join(ws, "plan.md"), []byte("x"), 0o600)
	r := &ghRun{t: t, workspace: ws,
		github: map[string]any{"repository": "acme/flags", "event": map[string]any{"pull_request": map[string]any{
			"number": 7, "head": map[string]any{"repo": map[string]any{"full_name": "someone/fork"}}}}},
		steps: map[string]ghStepResult{"validate": {outcome: "failure"}, "plan": {outcome: "success", outputs: map[string]string{"exitcode": "2"}}},
	}
	for expr, want := range map[string]bool{
		"always() && hashFiles('plan.md') != ''":                                  true,
		"always() && hashFiles('missing.md') != ''":                               false,
		"success() || steps.validate.outcome == 'failure'":                        true,
		"success() || steps.plan.outcome == 'failure'":                            true,
		"github.event.pull_request.head.repo.full_name == github.repository":      false,
		"!(github.event.pull_request.head.repo.full_name == github.repository)":   true,
		"steps.plan.outputs.exitcode == '2' && github.repository == 'ACME/flags'": true,
	} {
		if got := truthy(r.eval(expr)); got != want {
			t.Errorf("%s = %v, want %v", expr, got, want)
		}
	}
	r.failed = true
	if truthy(r.eval("success()")) || !truthy(r.eval("failure()")) {
		t.Error("success()/failure() ignore a failed step")
	}
	if got := r.interpolate("group-${{ github.event.pull_request.number }}"); got != "group-7" {
		t.Errorf("interpolate: %q", got)
	}
	for _, bad := range []string{"contains(github.repository, 'acme')", "github.run_number > 3", "vars.X == 'y'", "steps.nope.outcome == 'x'", "github.event.number == 7"} {
		ft := &fatalRecorder{TB: t}
		func() {
			defer func() {
				if v := recover(); v != nil && v != errFatal {
					panic(v)
				}
			}()
			(&ghRun{t: ft, workspace: ws, github: r.github, steps: r.steps}).eval(bad)
		}()
		if !ft.fataled {
			t.Errorf("%q was accepted; the evaluator must refuse what it does not know", bad)
		}
	}
}

// fatalRecorder stands in for the test where a Fatalf is expected: it records it and
// unwinds with errFatal.
type fatalRecorder struct {
	testing.TB
	fataled bool
}

var errFatal = errors.New("fatal")

func (f *fatalRecorder) Fatalf(string, ...any) { f.fataled = true; panic(errFatal) }

// testGitLabPlanJob runs the GitLab example's flagsync-plan job: its before_script
// (except the go install) and script in one shell with `set -eo pipefail`, as GitLab's
// runner does, against a fake GitLab.
func testGitLabPlanJob(t *testing.T, bin string, s scenario) {
	raw, err := os.ReadFile(filepath.Join(deployDir, "gitlab-ci", "flagsync.gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var ci map[string]any
	if err := yaml.Unmarshal(raw, &ci); err != nil {
		t.Fatal(err)
	}
	job, _ := ci["flagsync-plan"].(map[string]any)
	if job == nil {
		t.Fatal("no flagsync-plan job")
	}
	vars := map[string]string{}
	for k, v := range dig(ci, "variables").(map[string]any) {
		vars[k] = fmt.Sprint(v)
	}
	flagsPath := vars["FLAGS_PATH"]
	workspace, headSHA, badLine := exampleRepository(t, flagsPath, s == invalidFiles)
	sandboxURL := startSandboxProcess(t, bin)

	gl := codehosttest.NewGitLab(42, prRepo)
	bot := codehosttest.GitLabUser{ID: 90, Username: "project_42_bot_1", Bot: true, Role: codehosttest.RoleDeveloper}
	gl.AddToken(gitlabTok, bot)
	carol := codehosttest.GitLabUser{ID: 61, Username: "carol", Role: codehosttest.RoleMaintainer}
	foreignBody := "<!-- flagsync-plan -->\ncarol's notes"
	foreign := gl.AddNote(prNumber, carol, foreignBody, false)
	srv := gl.Start(t)

	env := map[string]string{
		"PATH": bin + ":/usr/local/bin:/usr/bin:/bin", "HOME": t.TempDir(), "CI": "true", "GITLAB_CI": "true",
		"CI_API_V4_URL": srv.URL + "/api/v4", "CI_PROJECT_ID": "42", "CI_PROJECT_PATH": prRepo, "CI_PROJECT_DIR": workspace,
		"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": strconv.Itoa(prNumber), "CI_COMMIT_SHA": headSHA,
		"CI_PIPELINE_ID": "3100", "CI_JOB_URL": "https://gitlab.example/" + prRepo + "/-/jobs/77",
		// The project's CI/CD variables; Kameleoon is the sandbox.
		"KAMELEOON_READONLY_CLIENT_ID": "sandbox", "KAMELEOON_READONLY_CLIENT_SECRET": s.secret(), "GITLAB_TOKEN": gitlabTok,
		"KAMELEOON_API_URL": sandboxURL,
	}
	for k, v := range vars {
		env[k] = v
	}

	// The job runs on merge request pipelines.
	ruleRE := regexp.MustCompile(`^\$(\w+) == "([^"]*)"$`)
	runs := false
	for _, rule := range dig(job, "rules").([]any) {
		cond, _ := dig(rule, "if").(string)
		m := ruleRE.FindStringSubmatch(cond)
		if m == nil {
			t.Fatalf("rule %q: the test reads only $VAR == \"value\"", cond)
		}
		runs = runs || env[m[1]] == m[2]
	}
	if !runs {
		t.Fatal("flagsync-plan does not run on a merge request pipeline")
	}

	var lines []string
	before := dig(job, "before_script")
	if ext, _ := dig(job, "extends").(string); before == nil && ext != "" {
		before = dig(ci, ext, "before_script")
	}
	installs := 0
	for _, l := range append(before.([]any), dig(job, "script").([]any)...) {
		line := l.(string)
		if strings.Contains(line, "go install") && strings.Contains(line, "/cmd/flagsync@") {
			installs++
			continue
		}
		lines = append(lines, line)
	}
	if installs != 1 {
		t.Fatalf("%d lines install flagsync: want the one the test replaces", installs)
	}
	cmd := exec.Command("bash", "--noprofile", "--norc", "-c", "set -eo pipefail\n"+strings.Join(lines, "\n"))
	cmd.Dir = workspace
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	t.Logf("flagsync-plan:\n%s", out)
	if strings.Contains(string(out), gitlabTok) {
		t.Error("the job printed GITLAB_TOKEN")
	}
	if failed, want := err != nil, s != validWithChanges; failed != want {
		t.Errorf("job error %v: want it to fail: %v", err, want)
	}

	notes := gl.Notes(prNumber)
	if len(notes) != 2 || notes[0].ID != foreign || notes[0].Body != foreignBody || notes[1].Author.Username != bot.Username {
		t.Fatalf("notes %v: want carol's untouched and the project bot's", notes)
	}
	sts := gl.Statuses()
	if len(sts) != 1 || sts[0].Name != "flagsync/plan" || sts[0].SHA != headSHA || sts[0].PipelineID != 3100 || sts[0].TargetURL != env["CI_JOB_URL"] {
		t.Fatalf("statuses %+v", sts)
	}
	switch s {
	case planFails:
		if sts[0].State != "failed" || !strings.Contains(sts[0].Description, "did not finish") || !strings.Contains(notes[1].Body, env["CI_JOB_URL"]) {
			t.Errorf("status %+v, note %q: want both to say the plan did not finish", sts[0], notes[1].Body)
		}
		return
	case invalidFiles:
		problem := fmt.Sprintf("%s/dark_mode.yaml:%d:", flagsPath, badLine)
		if !strings.Contains(notes[1].Body, problem) || !strings.Contains(notes[1].Body, "the flag files are invalid") {
			t.Errorf("the note lacks the problem list (%s):\n%s", problem, notes[1].Body)
		}
		if sts[0].State != "failed" || sts[0].Description != "The flag files are invalid: 1 problem in 1 file" {
			t.Errorf("status %+v: want failed, with the count of problems", sts[0])
		}
		return
	}
	if rev := "for `" + headSHA[:7] + "`"; !strings.Contains(notes[1].Body, rev) {
		t.Errorf("the note does not name the commit (%s) as it is, without +dirty:\n%s", rev, notes[1].Body)
	}
	if sts[0].State != "success" || !strings.HasPrefix(sts[0].Description, "Plan: ") || !strings.Contains(notes[1].Body, "**"+sts[0].Description+"**") {
		t.Errorf("status %+v, note:\n%s\nwant success with the plan's summary line", sts[0], notes[1].Body)
	}
}
