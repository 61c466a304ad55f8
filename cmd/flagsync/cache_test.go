package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// loadedLine finds the debug line in which Kameleoon's loader says how it read the
// flag files.
var loadedLine = regexp.MustCompile(`msg="Kameleoon flag files loaded" (?:revision=\S+ )?files=(\d+) cached=(\d+) parsed=(\d+) cache=(\S*)`)

// TestValidationCacheOnByDefault: the validation cache is on in the CLI, kept in the
// cache folder (--cache-dir, else under the home): a second validate, and a plan after
// it, parse no flag file. --no-cache (FLAGSYNC_NO_CACHE) turns it off, as does the lack
// of any cache folder but the relative last resort.
func TestValidationCacheOnByDefault(t *testing.T) {
	dir := t.TempDir()
	repo := "../../examples/flags"
	run := func(env map[string]string, args ...string) (files, cached, parsed, cache string) {
		t.Helper()
		var out, errb bytes.Buffer
		a := &app{stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }}
		args = append(args, "--repo", repo, "--log-level", "debug")
		if code := a.dispatch(context.Background(), args); code != exitOK {
			t.Fatalf("%s: exit %d\n%s\n%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		m := loadedLine.FindStringSubmatch(errb.String())
		if m == nil {
			t.Fatalf("%s: no load line in\n%s", strings.Join(args, " "), errb.String())
		}
		return m[1], m[2], m[3], m[4]
	}
	cacheDir := filepath.Join(dir, "cache")
	withDir := map[string]string{"FLAGSYNC_CACHE_DIR": cacheDir}
	if files, cached, parsed, cache := run(withDir, "validate"); files != "8" || cached != "0" || parsed != "8" || cache != filepath.Join(cacheDir, "validation") {
		t.Errorf("first validate: files=%s cached=%s parsed=%s cache=%s", files, cached, parsed, cache)
	}
	if _, cached, parsed, _ := run(withDir, "validate"); cached != "8" || parsed != "0" {
		t.Errorf("second validate: cached=%s parsed=%s, want 8 and 0", cached, parsed)
	}
	sandbox := []string{"--sandbox", "--sandbox-state", filepath.Join(dir, "k.json"), "--split-sandbox-state", filepath.Join(dir, "s.json")}
	if _, cached, parsed, _ := run(nil, append([]string{"plan", "--cache-dir", cacheDir}, sandbox...)...); cached != "8" || parsed != "0" {
		t.Errorf("plan after validate: cached=%s parsed=%s, want 8 and 0", cached, parsed)
	}
	if _, cached, parsed, cache := run(withDir, "validate", "--no-cache"); cached != "0" || parsed != "8" || cache != "off" {
		t.Errorf("--no-cache: cached=%s parsed=%s cache=%q", cached, parsed, cache)
	}
	if _, cached, _, cache := run(map[string]string{"FLAGSYNC_CACHE_DIR": cacheDir, "FLAGSYNC_NO_CACHE": "true"}, "validate"); cached != "0" || cache != "off" {
		t.Errorf("FLAGSYNC_NO_CACHE: cached=%s cache=%q", cached, cache)
	}
	// By default under the home; without a home, off (not in .flagsync/cache here).
	home := filepath.Join(dir, "home")
	if _, _, _, cache := run(map[string]string{"HOME": home}, "validate"); cache != filepath.Join(home, ".cache", "flagsync", "validation") {
		t.Errorf("the default cache folder: %q", cache)
	}
	if _, _, _, cache := run(nil, "validate"); cache != "off" {
		t.Errorf("without a home: the cache is in %q", cache)
	}
	if _, err := os.Stat(filepath.Join(".flagsync", "cache", "validation")); err == nil {
		t.Error("a cache was written in the current folder")
	}
}
