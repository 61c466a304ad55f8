package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// underTerminal runs a shell command line under a pseudo-terminal (util-linux's script):
// flagsync's stdin, stdout and stderr are the terminal unless the line redirects them.
// It returns what the terminal showed.
func underTerminal(t *testing.T, env []string, line string) string {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		if os.Getenv("FLAGSYNC_REQUIRE_SHELLS") != "" {
			t.Fatal("script (util-linux) is not installed")
		}
		t.Skip("script (util-linux) is not installed")
	}
	cmd := exec.Command(script, "-qec", line, "/dev/null")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

// TestColourAndLogsUnderATerminal: on a terminal the plan is in colour and info logs are
// left out (the plan says it all); NO_COLOR (any value) and --no-color remove every
// escape code; with stdout redirected, the file has no escape code and the info logs
// still reach stderr.
func TestColourAndLogsUnderATerminal(t *testing.T) {
	flagsyncOnPath(t)
	repo, err := filepath.Abs(filepath.Join("..", "..", "examples", "flags"))
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "sandbox.json")
	plan := "flagsync plan --sandbox --repo " + shellQuote(repo) + " --sandbox-state " + shellQuote(state)
	clean := []string{"NO_COLOR=", "TERM=xterm", "FLAGSYNC_LOG_LEVEL=", "FLAGSYNC_LOG_FORMAT=", "FLAGSYNC_FORMAT="}

	shown := underTerminal(t, clean, plan)
	if !strings.Contains(shown, "\x1b[") || !strings.Contains(shown, "create") {
		t.Fatalf("a plan on a terminal is in colour (else this test proves nothing):\n%q", shown)
	}
	if strings.Contains(shown, "level=INFO") {
		t.Errorf("info logs on a terminal that shows the plan:\n%s", shown)
	}
	for name, tc := range map[string]struct {
		env  []string
		line string
	}{
		"NO_COLOR=1":         {[]string{"NO_COLOR=1"}, plan},
		"NO_COLOR=0":         {[]string{"NO_COLOR=0"}, plan}, // any non-empty value
		"--no-color":         {nil, plan + " --no-color"},
		"TERM=dumb":          {[]string{"TERM=dumb"}, plan},
		"sync --no-color":    {nil, strings.Replace(plan, "flagsync plan", "flagsync sync --dry-run", 1) + " --no-color"},
		"validate NO_COLOR":  {[]string{"NO_COLOR=1"}, "flagsync validate --repo " + shellQuote(repo)},
		"doctor NO_COLOR":    {[]string{"NO_COLOR=1"}, "flagsync doctor --sandbox --site a1b2c3d4e5 --sandbox-state " + shellQuote(filepath.Join(t.TempDir(), "doctor.json"))},
		"--log-level info":   {[]string{"NO_COLOR=1"}, plan + " --log-level info"},
		"sync --format json": {[]string{"NO_COLOR=1"}, strings.Replace(plan, "flagsync plan", "flagsync sync --dry-run --format json", 1)},
	} {
		t.Run(name, func(t *testing.T) {
			out := underTerminal(t, append(append([]string{}, clean...), tc.env...), tc.line)
			if strings.Contains(out, "\x1b") {
				t.Errorf("an escape code:\n%q", out)
			}
			if len(strings.TrimSpace(out)) == 0 {
				t.Error("no output")
			}
		})
	}

	t.Run("redirected output keeps the info logs", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "plan.txt")
		shown := underTerminal(t, clean, plan+" > "+shellQuote(file))
		written, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(written), "\x1b") || !strings.Contains(string(written), "create") {
			t.Errorf("the redirected plan:\n%q", written)
		}
		if !strings.Contains(shown, "level=INFO") || !strings.Contains(shown, `msg="plan computed"`) || strings.Contains(shown, "\x1b") {
			t.Errorf("the terminal (stderr) lacks the info logs, as text:\n%s", shown)
		}
	})
	t.Run("stderr redirected", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "log.txt")
		underTerminal(t, clean, plan+" 2> "+shellQuote(file))
		logs, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(logs), "level=INFO") || strings.Contains(string(logs), "\x1b") {
			t.Errorf("stderr to a file: text info logs, no escape code:\n%s", logs)
		}
	})
	t.Run("json logs on request", func(t *testing.T) {
		shown := underTerminal(t, append(clean, "FLAGSYNC_LOG_FORMAT=json"), plan+" --log-level info > /dev/null")
		if !strings.Contains(shown, `"level":"INFO"`) {
			t.Errorf("FLAGSYNC_LOG_FORMAT=json:\n%s", shown)
		}
	})
}
