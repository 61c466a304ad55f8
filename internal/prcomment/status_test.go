package prcomment

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flagsync/flagsync/internal/codehost"
	"github.com/flagsync/flagsync/internal/codehost/codehosttest"
	"github.com/flagsync/flagsync/internal/diag"
)

const headSHA = "0123456789abcdef0123456789abcdef01234567"

// invalidReport120 is the report of a repository with 120 problems.
func invalidReport120(t *testing.T) Report {
	t.Helper()
	var diags []diag.Diagnostic
	for i := range 120 {
		diags = append(diags, diag.Diagnostic{File: fmt.Sprintf("flags/f%03d.yaml", i), Line: i + 1, Column: 3, Field: "name", Message: "is required"})
	}
	r, err := NewReport(Inputs{ValidateJSON: validateJSON(t, false, diags...)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPublishCheckRunBatchesAnnotations(t *testing.T) {
	gh := codehosttest.NewGitHub("acme/flags")
	gh.AddToken("ghs_x", codehosttest.ActionsToken(true, true, false))
	srv := gh.Start(t)
	rep := invalidReport120(t)
	target := Target{Provider: GitHub, APIURL: srv.URL, Repo: "acme/flags", Number: 7, Token: "ghs_x", SHA: headSHA, TargetURL: "https://github.example/acme/flags/actions/runs/1"}

	res, err := Publish(context.Background(), nil, target, rep, marker+"\n### the plan comment\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindCheckRun || res.State != "failure" || res.Annotations != 120 {
		t.Fatalf("result %+v", res)
	}
	runs := gh.CheckRuns()
	if len(runs) != 1 {
		t.Fatalf("%d check runs", len(runs))
	}
	run := runs[0]
	if run.Name != "flagsync plan" || run.HeadSHA != headSHA || run.Conclusion != "failure" || run.Status != "completed" ||
		run.Title != "The flag files are invalid: 120 problems in 120 files" || run.Summary != "### the plan comment\n" ||
		run.DetailsURL != target.TargetURL || len(run.Annotations) != 120 {
		t.Fatalf("check run %+v", run)
	}
	if a := run.Annotations[119]; a.Path != "flags/f119.yaml" || a.StartLine != 120 || a.EndLine != 120 || a.AnnotationLevel != "failure" || a.Message != "name: is required" {
		t.Fatalf("last annotation %+v", a)
	}
	var methods []string
	for _, c := range gh.Writes() {
		methods = append(methods, c.Method)
	}
	if strings.Join(methods, " ") != "POST PATCH PATCH" {
		t.Fatalf("writes %q: want the run with 50 annotations, then two updates (50, 20)", methods)
	}
	if len(gh.Statuses()) != 0 {
		t.Fatalf("statuses %+v: want none when the check run was created", gh.Statuses())
	}
}

// TestPublishFallsBackToACommitStatus: a personal token, or a GITHUB_TOKEN without
// checks: write, is refused the check run (403); a commit status is set instead.
func TestPublishFallsBackToACommitStatus(t *testing.T) {
	for name, acct := range map[string]codehosttest.GitHubAccount{
		"personal token":                     {ID: 777, Login: "flagsync-ci"},
		"GITHUB_TOKEN without checks: write": codehosttest.ActionsToken(true, false, true),
	} {
		t.Run(name, func(t *testing.T) {
			gh := codehosttest.NewGitHub("acme/flags")
			gh.AddToken("tok", acct)
			srv := gh.Start(t)
			rep := Report{Conclusion: Neutral, Title: strings.Repeat("Plan: 1 to create; 1 change refused (Kameleoon will still differ from Git). ", 3)}
			res, err := Publish(context.Background(), nil, Target{Provider: GitHub, APIURL: srv.URL, Repo: "acme/flags", Token: "tok", SHA: headSHA, TargetURL: "https://x/run"}, rep, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != KindCommitStatus || res.State != "success" || !codehost.IsStatus(res.Refused, http.StatusForbidden) {
				t.Fatalf("result %+v: want a success commit status after a 403", res)
			}
			sts := gh.Statuses()
			if len(sts) != 1 || sts[0].Context != "flagsync/plan" || sts[0].SHA != headSHA || sts[0].State != "success" ||
				utf8.RuneCountInString(sts[0].Description) != 140 || !strings.HasPrefix(sts[0].Description, "Plan: 1 to create") || sts[0].TargetURL != "https://x/run" {
				t.Fatalf("statuses %+v", sts)
			}
			if len(gh.CheckRuns()) != 0 {
				t.Fatal("a check run was created")
			}
		})
	}
}

func TestPublishGitLabCommitStatus(t *testing.T) {
	gl := codehosttest.NewGitLab(42, "acme/flags")
	gl.AddToken("glpat", codehosttest.GitLabUser{ID: 90, Username: "project_42_bot_1", Bot: true, Role: codehosttest.RoleDeveloper})
	gl.AddToken("glpat-reporter", codehosttest.GitLabUser{ID: 92, Username: "reporter", Role: codehosttest.RoleReporter})
	srv := gl.Start(t)
	target := Target{Provider: GitLab, APIURL: srv.URL + "/api/v4", Repo: "acme/flags", Number: 7, Token: "glpat", SHA: headSHA,
		TargetURL: "https://gitlab.example/acme/flags/-/jobs/9", PipelineID: 77}
	rep := invalidReport120(t)
	res, err := Publish(context.Background(), nil, target, rep, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindCommitStatus || res.State != "failed" {
		t.Fatalf("result %+v", res)
	}
	rep.Conclusion, rep.Title = Success, strings.Repeat("x", 300)
	if _, err := Publish(context.Background(), nil, target, rep, "", nil); err != nil {
		t.Fatal(err)
	}
	sts := gl.Statuses()
	if len(sts) != 2 || sts[0].Name != "flagsync/plan" || sts[0].State != "failed" || sts[0].Description != "The flag files are invalid: 120 problems in 120 files" ||
		sts[0].TargetURL != target.TargetURL || sts[0].PipelineID != 77 || sts[0].SHA != headSHA ||
		sts[1].State != "success" || utf8.RuneCountInString(sts[1].Description) != 255 {
		t.Fatalf("statuses %+v", sts)
	}

	// A Reporter may comment but not set statuses: the error says so, nothing is set.
	target.Token = "glpat-reporter"
	if _, err := Publish(context.Background(), nil, target, rep, "", nil); !codehost.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("error %v: want GitLab's 403", err)
	}
	if len(gl.Statuses()) != 2 {
		t.Fatal("a status was set with a Reporter's token")
	}
}

func TestPublishCapsAnnotations(t *testing.T) {
	gh := codehosttest.NewGitHub("acme/flags")
	gh.AddToken("ghs_x", codehosttest.ActionsToken(true, true, false))
	srv := gh.Start(t)
	rep := Report{Conclusion: Failure, Title: "many", Markdown: "list"}
	for i := range MaxAnnotations + 7 {
		rep.Annotations = append(rep.Annotations, Annotation{File: "f.yaml", Line: i + 1, Level: codehost.AnnotationFailure, Message: "bad"})
	}
	res, err := Publish(context.Background(), nil, Target{Provider: GitHub, APIURL: srv.URL, Repo: "acme/flags", Token: "ghs_x", SHA: headSHA}, rep, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	run := gh.CheckRuns()[0]
	if res.Annotations != MaxAnnotations || len(run.Annotations) != MaxAnnotations || !strings.Contains(run.Summary, "7 more") {
		t.Fatalf("result %+v, %d annotations, summary %q", res, len(run.Annotations), run.Summary)
	}
	if len(gh.Writes()) != MaxAnnotations/codehost.MaxAnnotationsPerRequest {
		t.Fatalf("%d requests", len(gh.Writes()))
	}
}

// TestPostPlanThatDidNotFinish: plan leaves its Markdown empty when it could not read the
// service, while --json-out holds an empty plan; that must not read as "no changes".
func TestPostPlanThatDidNotFinish(t *testing.T) {
	gh := codehosttest.NewGitHub("acme/flags")
	gh.AddToken("ghs_x", codehosttest.ActionsToken(true, true, false))
	srv := gh.Start(t)
	emptyPlan := []byte(`{"revision":"","summary":{"create":0,"update":0,"archive":0,"unmanaged":0,"blocked":0},"changes":[],"unmanaged":[],"blocked":[]}`)
	out, err := Post(context.Background(), Options{
		Target: Target{Provider: GitHub, APIURL: srv.URL, Repo: "acme/flags", Number: 7, Token: "ghs_x", InstallationAuthor: "github-actions[bot]", SHA: headSHA},
		Marker: marker, Markdown: "\n", Comment: true, Status: true,
		Inputs: Inputs{PlanJSON: emptyPlan, ValidateJSON: validateJSON(t, true), JobURL: "https://x/run/1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	run := gh.CheckRuns()[0]
	if out.Status.State != "failure" || !strings.Contains(run.Title, "did not finish") {
		t.Fatalf("check run %+v: want a failure saying the plan did not finish", run)
	}
	if cs := gh.Comments(7); len(cs) != 1 || !strings.Contains(cs[0].Body, "did not finish") || !strings.Contains(cs[0].Body, "https://x/run/1") {
		t.Fatalf("comments %+v: want the report's note, with the link to the run", cs)
	}
}
