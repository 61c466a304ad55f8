package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runValidate(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"validate", "--log-format", "text"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeValidateRepo writes files (slash-separated names) into a new temporary repository.
func writeValidateRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const validateBadSettings = "siteCode: pzllysfw2f\nenvironments: [development, production]\n"

var validateBadRepo = map[string]string{
	"flags/flagsync.yaml": validateBadSettings,
	"flags/a.yaml":        "featureKey: a\nname: A\nvariations: [{key: off}]\nenvironments:\n  prod:\n    defaultVariationKey: of\n",
	"flags/team/b.yaml":   "featureKey: b\nname: B\nvariations: [{key: on}]\nexposure: 5\n",
	"flags/c.yaml":        "featureKey: c\nname: C\nvariations: [{key: on}]\n",
	"README.md":           "not a flag\n",
}

func TestValidateExamples(t *testing.T) {
	code, out, errOut := runValidate(t, "--repo", filepath.Join("..", "..", "examples", "flags"))
	if code != exitOK || out != "8 flag files valid (2 sites)\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The same folder named with --path: the output counts the same flags.
	code, out, _ = runValidate(t, "--repo", filepath.Join("..", ".."), "--path", "examples/flags")
	if code != exitOK || out != "8 flag files valid (2 sites)\n" {
		t.Errorf("--path: exit %d, stdout %q", code, out)
	}
}

func TestValidateInvalidText(t *testing.T) {
	repo := writeValidateRepo(t, validateBadRepo)
	code, out, errOut := runValidate(t, "--repo", repo, "--path", "flags")
	want := strings.Join([]string{
		`flags/a.yaml:5:3: environments.prod: unknown environment "prod"; did you mean "production"? (flagsync.yaml lists development, production)`,
		`flags/a.yaml:6:26: environments.prod.defaultVariationKey: unknown variation "of"; did you mean "off"?`,
		`flags/team/b.yaml:4:1: exposure: unknown field "exposure"`,
		`3 problems in 2 files`,
	}, "\n") + "\n"
	if code != exitFail || out != want {
		t.Errorf("exit %d\nstdout:\n%s\nwant:\n%s\nstderr: %s", code, out, want, errOut)
	}
}

func TestValidateJSON(t *testing.T) {
	repo := writeValidateRepo(t, validateBadRepo)
	code, out, _ := runValidate(t, "--repo", repo, "--path", "flags", "--format", "json")
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	var rep struct {
		Valid       bool `json:"valid"`
		Files       int  `json:"files"`
		Diagnostics []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Column  int    `json:"column"`
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if rep.Valid || rep.Files != 3 || len(rep.Diagnostics) != 3 {
		t.Fatalf("report = %+v", rep)
	}
	d := rep.Diagnostics[2]
	if d.File != "flags/team/b.yaml" || d.Line != 4 || d.Column != 1 || d.Field != "exposure" || d.Message != `unknown field "exposure"` {
		t.Errorf("diagnostic = %+v", d)
	}

	// Valid: diagnostics is an empty list, not null.
	code, out, _ = runValidate(t, "--repo", filepath.Join("..", "..", "examples", "flags"), "--format", "json")
	if code != exitOK || !strings.Contains(out, `"valid": true`) || !strings.Contains(out, `"files": 8`) || !strings.Contains(out, `"diagnostics": []`) {
		t.Errorf("exit %d, stdout %s", code, out)
	}
}

func TestValidateUsageAndErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		inStderr string
		inStdout string
	}{
		{"bad format", []string{"--format", "xml"}, exitUsage, `--format "xml": want text, json, github or gitlab`, ""},
		{"mistyped format", []string{"--format", "jsn"}, exitUsage, `--format "jsn": want text, json, github or gitlab; did you mean json?`, ""},
		{"unknown flag", []string{"--colour"}, exitUsage, "flagsync validate: unknown flag --colour\nRun 'flagsync validate -h' for its flags.\n", ""},
		{"mistyped flag", []string{"--pth", "flags"}, exitUsage, "unknown flag --pth; did you mean --path?", ""},
		{"extra argument", []string{"flags"}, exitUsage, `unexpected argument "flags"`, ""},
		{"help", []string{"-h"}, exitOK, "", "flagsync validate --repo examples/flags"},
		{"missing repository", []string{"--repo", filepath.Join(t.TempDir(), "nope")}, exitFail, "open repository", ""},
		{"missing flag folder", []string{"--repo", t.TempDir(), "--path", "flags"}, exitFail, "flags", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runValidate(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.inStderr) || !strings.Contains(out, tc.inStdout) {
				t.Errorf("exit %d (want %d), stderr %q (want it to contain %q), stdout %q (want %q)", code, tc.code, errOut, tc.inStderr, out, tc.inStdout)
			}
			if tc.code == exitUsage && strings.Count(errOut, "\n") > 2 {
				t.Errorf("a usage error is one line and a pointer to -h, not the usage:\n%s", errOut)
			}
		})
	}
}

func TestValidateGitHubAnnotations(t *testing.T) {
	repo := writeValidateRepo(t, validateBadRepo)
	code, out, _ := runValidate(t, "--repo", repo, "--path", "flags", "--format", "github")
	want := strings.Join([]string{
		`::error file=flags/a.yaml,line=5,col=3,title=flagsync validate::environments.prod: unknown environment "prod"; did you mean "production"? (flagsync.yaml lists development, production)`,
		`::error file=flags/a.yaml,line=6,col=26,title=flagsync validate::environments.prod.defaultVariationKey: unknown variation "of"; did you mean "off"?`,
		`::error file=flags/team/b.yaml,line=4,col=1,title=flagsync validate::exposure: unknown field "exposure"`,
		`3 problems in 2 files`,
	}, "\n") + "\n"
	if code != exitFail || out != want {
		t.Errorf("exit %d\nstdout:\n%s\nwant:\n%s", code, out, want)
	}
	if got := ghProperty("a,b:c%"); got != "a%2Cb%3Ac%25" {
		t.Errorf("ghProperty = %q", got)
	}
	if got := ghData("line one\nline two 100%"); got != "line one%0Aline two 100%25" {
		t.Errorf("ghData = %q", got)
	}
}
