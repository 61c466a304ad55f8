package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/codehost/codehosttest"
)

const prHeadSHA = "1111111111111111111111111111111111111111"

// runComment runs `flagsync comment args...` in-process with env as the environment.
func runComment(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{stdout: &out, stderr: &errOut, getenv: func(k string) string { return env[k] }}
	code = a.dispatch(context.Background(), append([]string{"comment"}, args...))
	return code, out.String(), errOut.String()
}

// TestCommentFromGitHubActionsEnvironment runs the command as the GitHub plan workflow
// does, with Actions' own GITHUB_TOKEN: everything but the files comes from the job's
// environment, the comment is written by github-actions[bot], a second run updates it in
// place, a comment with the marker by someone else is never touched, and the check run
// goes on the pull request's head commit (not GITHUB_SHA, a merge commit).
func TestCommentFromGitHubActionsEnvironment(t *testing.T) {
	gh := codehosttest.NewGitHub("acme/flags")
	gh.AddToken("ghs_token", codehosttest.ActionsToken(true, true, true))
	person := codehosttest.GitHubAccount{ID: 9, Login: "octocat"}
	foreign := gh.AddComment(42, person, "<!-- flagsync-plan -->\nmy own notes, keep them")
	srv := gh.Start(t)

	dir := t.TempDir()
	event := filepath.Join(dir, "event.json")
	os.WriteFile(event, []byte(`{"action":"synchronize","number":42,"pull_request":{"number":42,"head":{"sha":"`+prHeadSHA+`"}}}`), 0o600)
	planMD, planJSON := filepath.Join(dir, "plan.md"), filepath.Join(dir, "plan.json")
	env := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_API_URL": srv.URL, "GITHUB_REPOSITORY": "acme/flags",
		"GITHUB_EVENT_PATH": event, "GITHUB_TOKEN": "ghs_token", "GITHUB_SHA": strings.Repeat("9", 40),
		"GITHUB_SERVER_URL": "https://github.example", "GITHUB_RUN_ID": "5",
	}
	for i, n := range []int{1, 2} {
		os.WriteFile(planMD, fmt.Appendf(nil, "<!-- flagsync-plan -->\n### flagsync plan\n\n**Plan: %d to create, 0 to update, 0 to archive.**\n", n), 0o600)
		changes := strings.Repeat(`{"action":"create"},`, n)
		os.WriteFile(planJSON, fmt.Appendf(nil, `{"format_version":2,"revision":"","service":"Kameleoon","summary":{"create":%d,"update":0,"archive":0,"unmanaged":0,"blocked":0},"changes":[%s],"unmanaged":[],"blocked":[]}`, n, strings.TrimSuffix(changes, ",")), 0o600)
		code, out, errOut := runComment(t, env, "--file", planMD, "--plan-json", planJSON, "--log-format", "json")
		if code != exitOK {
			t.Fatalf("run %d: exit %d: %s", i, code, errOut)
		}
		want := []string{"created plan comment", "updated plan comment"}[i]
		if !strings.Contains(out, want) || !strings.Contains(out, "as github-actions[bot]") || !strings.Contains(out, `check run`) {
			t.Fatalf("run %d printed %q, want %q by github-actions[bot] and a check run", i, out, want)
		}
	}
	cs := gh.Comments(42)
	if len(cs) != 2 || cs[0].ID != foreign || cs[0].Body != "<!-- flagsync-plan -->\nmy own notes, keep them" ||
		cs[1].User.Login != "github-actions[bot]" || !strings.Contains(cs[1].Body, "Plan: 2 to create") {
		t.Fatalf("comments %+v: want octocat's untouched and one bot comment, updated", cs)
	}
	for _, c := range gh.Writes() {
		if strings.Contains(c.Path, "/comments/") && !strings.HasSuffix(c.Path, "/comments/"+strconv.FormatInt(cs[1].ID, 10)) {
			t.Fatalf("write %v touches a comment that is not the bot's", c)
		}
	}
	runs := gh.CheckRuns()
	if len(runs) != 2 || runs[1].HeadSHA != prHeadSHA || runs[1].Conclusion != "success" ||
		runs[1].Title != "Plan: 2 to create, 0 to update, 0 to archive." || !strings.HasPrefix(runs[1].Summary, "### flagsync plan") ||
		runs[1].DetailsURL != "https://github.example/acme/flags/actions/runs/5" {
		t.Fatalf("check runs %+v", runs)
	}
}

// TestCommentGitLabMergeRequest: a project access token's bot writes one note and sets a
// failed commit status when the files are invalid, even though plan wrote no JSON.
func TestCommentGitLabMergeRequest(t *testing.T) {
	gl := codehosttest.NewGitLab(42, "acme/flags")
	gl.AddToken("glpat", codehosttest.GitLabUser{ID: 90, Username: "project_42_bot_1", Bot: true, Role: codehosttest.RoleDeveloper})
	srv := gl.Start(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "validate.json")
	os.WriteFile(report, []byte(`{"valid":false,"files":2,"diagnostics":[{"file":"flags/a.yaml","line":3,"column":5,"field":"name","message":"is required"}]}`), 0o600)
	planMD := filepath.Join(dir, "plan.md")
	os.WriteFile(planMD, nil, 0o600) // plan stopped before writing anything
	env := map[string]string{
		"GITLAB_CI": "true", "CI_API_V4_URL": srv.URL + "/api/v4", "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7",
		"CI_COMMIT_SHA": prHeadSHA, "CI_JOB_URL": "https://gitlab.example/acme/flags/-/jobs/3", "CI_PIPELINE_ID": "12", "GITLAB_TOKEN": "glpat",
	}
	code, out, errOut := runComment(t, env, "--file", planMD, "--plan-json", filepath.Join(dir, "plan.json"), "--validate-json", report)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `commit status "flagsync/plan" on 1111111: failed`) || !strings.Contains(out, "created plan comment") {
		t.Fatalf("stdout %q", out)
	}
	notes := gl.Notes(7)
	if len(notes) != 1 || !strings.Contains(notes[0].Body, "flags/a.yaml:3:5: name: is required") || notes[0].Author.Username != "project_42_bot_1" {
		t.Fatalf("notes %v: want the problem list, by the project's bot", notes)
	}
	sts := gl.Statuses()
	if len(sts) != 1 || sts[0].State != "failed" || sts[0].Description != "The flag files are invalid: 1 problem in 1 file" || sts[0].PipelineID != 12 {
		t.Fatalf("statuses %+v", sts)
	}
}

func TestCommentUsageErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "plan.md")
	os.WriteFile(f, []byte("x"), 0o600)
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--file", f}, "--provider is required"},
		{nil, nil, "give --file, or --plan-json"},
		{map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "a/b", "GITHUB_TOKEN": "t"}, []string{"--number", "3", "--plan-json", f}, "no commit to set the status on"},
	} {
		code, _, errOut := runComment(t, c.env, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("comment %q: exit %d, stderr %q: want %d and %q", c.args, code, errOut, exitUsage, c.want)
		}
	}
}
