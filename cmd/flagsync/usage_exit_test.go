package main

import (
	"strings"
	"testing"
)

// TestSandboxOnUnleashIsUsage: --sandbox on an Unleash repository is a bad command line
// (Unleash has no embedded sandbox): plan, sync and run exit 64 with the provider's
// message, and flagsync sandbox --vendor unleash too.
func TestSandboxOnUnleashIsUsage(t *testing.T) {
	repo := "../../examples/unleash"
	for _, args := range [][]string{
		{"plan", "--sandbox", "--repo", repo},
		{"sync", "--sandbox", "--repo", repo},
		{"sync", "--sandbox", "--repo", repo, "--format", "json"},
		{"run", "--sandbox", "--repo", repo, "--listen", "127.0.0.1:0", "--admin-listen", "off"},
		{"sandbox", "--vendor", "unleash"},
	} {
		code, _, errs := runArgs(append(args, "--log-level", "error")...)
		if code != exitUsage || !strings.Contains(errs, "no embedded sandbox") || !strings.Contains(errs, "UNLEASH_URL") {
			t.Errorf("%s: exit %d, want %d\n%s", strings.Join(args, " "), code, exitUsage, errs)
		}
	}
}

// TestSandboxEnvironmentsHelp: --environments names the default environments of the
// sandboxes that have some, and no provider without a sandbox.
func TestSandboxEnvironmentsHelp(t *testing.T) {
	_, help, _ := runArgs("sandbox", "-h")
	i := strings.Index(help, "--environments string")
	if i < 0 {
		t.Fatalf("no --environments in\n%s", help)
	}
	line := help[i:]
	line = line[:strings.Index(line, ")")+1]
	if !strings.Contains(line, "kameleoon: ") || !strings.Contains(line, "split: ") || strings.Contains(line, "unleash") || strings.Contains(line, "; )") {
		t.Errorf("--environments help: %q", line)
	}
}
