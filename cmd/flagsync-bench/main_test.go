package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBenchSync(t *testing.T) {
	var out, errb bytes.Buffer
	// 120 flags: more calls than one 10-second window allows, so the budget must pace
	// them; a scale of 600 keeps the wait short.
	code := run(context.Background(), []string{"sync", "-n", "120", "-scale", "600", "-format", "markdown"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	// | pass | changes | API calls | minimum | token | list pages | writes | confirm reads | retries | 429s | wall | floor | converged |
	want := map[string][]string{
		// The creates and the patch are confirmed by their answers: no read follows.
		"create 120": {"120", "122", "121", "1", "1", "120", "0", "0", "0"},
		"change 1%":  {"1", "4", "3", "1", "2", "1", "0", "0", "0"},
	}
	for _, line := range strings.Split(out.String(), "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		exp, ok := want[cells[0]]
		if !ok {
			continue
		}
		delete(want, cells[0])
		if got := strings.Join(cells[1:10], " "); got != strings.Join(exp, " ") {
			t.Errorf("%s: figures %s, want %s", cells[0], got, strings.Join(exp, " "))
		}
		if cells[12] != "true" {
			t.Errorf("%s did not converge", cells[0])
		}
	}
	if len(want) > 0 {
		t.Errorf("rows missing from the output:\n%s", out.String())
	}
}

func TestLimitFloor(t *testing.T) {
	for calls, want := range map[int]time.Duration{0: 0, 1: 0, 50: 0, 51: 10 * time.Second, 1000: 190 * time.Second, 1001: time.Hour, 2001: 2 * time.Hour} {
		if got := limitFloor(calls); got != want {
			t.Errorf("limitFloor(%d) = %s, want %s", calls, got, want)
		}
	}
}

func TestUnknownScenario(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"nope"}, &out, &errb); code != 64 {
		t.Errorf("exit %d, want 64", code)
	}
}

// TestAllOnly regenerates one scenario's section: the document holds it and no other.
func TestAllOnly(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"all", "-only", "nope"}, &out, &errb); code != 64 {
		t.Errorf("-only naming no scenario: exit %d", code)
	}
	file := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	// Exit 1 is a figure failing its check (measured CPU times): not this test's concern.
	if code := run(context.Background(), []string{"all", "-quick", "-only", "load", "-out", file}, &out, &errb); code > 1 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	doc, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "## Load and validate") || strings.Contains(string(doc), "## Plan") ||
		!strings.Contains(string(doc), "| load + validate 1,000 flag files, cold (empty cache) |") {
		t.Errorf("document:\n%s", doc)
	}
}
