package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/cli"
)

// namespaces are the commands whose flags' variables have a prefix of their own: they
// configure something else than a sync (a sandbox server, a Git host's API).
var namespaces = map[string]string{"sandbox": "FLAGSYNC_SANDBOX_", "comment": "FLAGSYNC_COMMENT_"}

// envExceptions are the variables that are not prefix + NAME, by flag: Git's settings
// keep FLAGSYNC_GIT_, vendors' documented variables, NO_COLOR, and the flags that mean
// the same in every command whatever its prefix.
var envExceptions = map[string]string{
	"depth":                        "FLAGSYNC_GIT_DEPTH",
	"ssh-key":                      "FLAGSYNC_GIT_SSH_KEY_FILE",
	"known-hosts":                  "FLAGSYNC_GIT_KNOWN_HOSTS",
	"insecure-skip-host-key-check": "FLAGSYNC_GIT_INSECURE_SKIP_HOST_KEY_CHECK",
	"api-url":                      "KAMELEOON_API_URL",
	"split-api-url":                "SPLIT_API_URL",
	"split-title":                  "SPLIT_CHANGE_TITLE",
	"split-comment":                "SPLIT_CHANGE_COMMENT",
	"split-approvers":              "SPLIT_CHANGE_APPROVERS",
	"split-approval-environments":  "SPLIT_APPROVAL_ENVIRONMENTS",
	"split-pr-url":                 "FLAGSYNC_PR_URL",
	"split-key-header":             "SPLIT_API_KEY_HEADER",
	"unleash-url":                  "UNLEASH_URL",
	"strict":                       "FLAGSYNC_SANDBOX_STRICT",
	"no-color":                     "NO_COLOR",
	"log-level":                    "FLAGSYNC_LOG_LEVEL",
	"log-format":                   "FLAGSYNC_LOG_FORMAT",
	"path":                         "FLAGSYNC_PATH",
}

// allFlagSets returns every command's flags.
func allFlagSets(t *testing.T) map[string]*cli.FlagSet {
	t.Helper()
	a := &app{stdout: &strings.Builder{}, stderr: &strings.Builder{}, getenv: func(string) string { return "" }}
	a.dispatch(context.Background(), []string{"version", "-h"}) // sets the registry
	out := map[string]*cli.FlagSet{}
	for _, name := range commandNames() {
		if fs := a.flagSet(context.Background(), name); fs != nil {
			out[name] = fs
		}
	}
	if len(out) < 10 {
		t.Fatalf("flags of %d commands", len(out))
	}
	return out
}

// TestEveryFlagHasOneVariable walks every command's flags: each names its variable on its
// help line, the variable follows the rule (or is a listed exception), and a flag name
// has the same variable in every command of a namespace.
func TestEveryFlagHasOneVariable(t *testing.T) {
	byFlag := map[string]map[string]string{} // namespace → flag → variable
	for cmd, fs := range allFlagSets(t) {
		help := helpText(t, cmd)
		prefix := cli.EnvPrefix
		if p, ok := namespaces[cmd]; ok {
			prefix = p
		}
		if byFlag[prefix] == nil {
			byFlag[prefix] = map[string]string{}
		}
		for _, f := range fs.Flags() {
			i := strings.Index(help, "\n  --"+f.Name)
			if i < 0 {
				t.Errorf("%s -h lacks --%s", cmd, f.Name)
				continue
			}
			line := strings.SplitN(help[i+1:], "\n", 3)[1]
			if !strings.HasSuffix(line, "env "+f.Env+")") || strings.Count(line, "env ") != 1 {
				t.Errorf("%s --%s: the help line does not end with its one variable %s:\n%s", cmd, f.Name, f.Env, line)
			}
			derived := prefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
			if f.Env != derived && envExceptions[f.Name] != f.Env && !(cmd == "sandbox" && strings.HasPrefix(f.Env, prefix)) {
				t.Errorf("%s --%s: variable %s, want %s", cmd, f.Name, f.Env, derived)
			}
			if prev, ok := byFlag[prefix][f.Name]; ok && prev != f.Env {
				t.Errorf("--%s is %s in one command and %s in %s", f.Name, prev, f.Env, cmd)
			}
			byFlag[prefix][f.Name] = f.Env
		}
	}
	// The flags the daemon alone had variables for are everyone's now.
	for _, name := range []string{"max-changes", "concurrency", "prune", "rate-10s", "rate-hour"} {
		if got := byFlag[cli.EnvPrefix][name]; got != "FLAGSYNC_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_")) {
			t.Errorf("--%s: %q", name, got)
		}
	}
}

// sampleValue is a value a flag of kind accepts other than its default.
func sampleValue(f cli.Flag) string {
	switch {
	case len(f.Values) > 0:
		return f.Values[len(f.Values)-1]
	case f.Kind == "bool":
		return "true"
	case f.Kind == "int", f.Kind == "int64":
		return "7"
	case f.Kind == "duration":
		return "7s"
	case f.Kind == "list":
		return "aaaaaaaaaa,bbbbbbbbbb"
	}
	return "from-somewhere"
}

// TestVariablesSetFlagsAsTheFlagWould sets every flag of every command once from its
// variable and once on the command line, and compares the parsed values.
func TestVariablesSetFlagsAsTheFlagWould(t *testing.T) {
	a := &app{stdout: &strings.Builder{}, stderr: &strings.Builder{}, getenv: func(string) string { return "" }}
	a.dispatch(context.Background(), []string{"version", "-h"})
	checked := map[string]bool{}
	for cmd, fs := range allFlagSets(t) {
		for _, f := range fs.Flags() {
			if f.EnvShown {
				continue // read by the provider, where the flag applies
			}
			v := sampleValue(f)
			fromEnv, fromFlag := a.flagSet(context.Background(), cmd), a.flagSet(context.Background(), cmd)
			if err := fromEnv.Parse(nil, func(k string) string { return map[string]string{f.Env: v}[k] }); err != nil {
				t.Errorf("%s %s=%s: %v", cmd, f.Env, v, err)
				continue
			}
			if err := fromFlag.Parse([]string{"--" + f.Name + "=" + v}, func(string) string { return "" }); err != nil {
				t.Errorf("%s --%s=%s: %v", cmd, f.Name, v, err)
				continue
			}
			got, want := fromEnv.Lookup(f.Name).Value.String(), fromFlag.Lookup(f.Name).Value.String()
			if got != want || (got == fromEnv.Lookup(f.Name).DefValue && len(f.Values) != 1) {
				t.Errorf("%s: %s=%s sets --%s to %q; the flag sets %q", cmd, f.Env, v, f.Name, got, want)
			}
			checked[f.Kind] = true
		}
	}
	for _, kind := range []string{"string", "int", "int64", "duration", "bool", "list"} {
		if !checked[kind] {
			t.Errorf("no flag of kind %s was checked", kind)
		}
	}
}

// TestVariablesInCommands runs a sample of commands with variables instead of flags and
// compares what they do.
func TestVariablesInCommands(t *testing.T) {
	repo := filepath.Join("..", "..", "examples", "flags")
	state := filepath.Join(t.TempDir(), "s.json")
	for _, tc := range []struct {
		name   string
		common []string
		env    map[string]string
		flags  []string
	}{
		{"validate json", []string{"validate"}, map[string]string{"FLAGSYNC_REPO": repo, "FLAGSYNC_FORMAT": "json"}, []string{"--repo", repo, "--format", "json"}},
		{"plan markdown", []string{"plan", "--sandbox-state", state}, map[string]string{"FLAGSYNC_SANDBOX": "true", "FLAGSYNC_FORMAT": "markdown", "FLAGSYNC_REPO": repo},
			[]string{"--sandbox", "--format", "markdown", "--repo", repo}},
		{"sync max-changes", []string{"sync", "--sandbox", "--repo", repo, "--sandbox-state", state}, map[string]string{"FLAGSYNC_MAX_CHANGES": "2", "FLAGSYNC_CONCURRENCY": "1"},
			[]string{"--max-changes", "2", "--concurrency", "1"}},
		{"sync bad concurrency", []string{"sync"}, map[string]string{"FLAGSYNC_CONCURRENCY": "0"}, []string{"--concurrency", "0"}},
		{"schema vendor", []string{"schema", "flag"}, map[string]string{"FLAGSYNC_VENDOR": "split"}, []string{"--vendor", "split"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c1, out1, err1 := runWithEnv(tc.env, tc.common...)
			c2, out2, err2 := runWithEnv(nil, append(append([]string{}, tc.common...), tc.flags...)...)
			if c1 != c2 || out1 != out2 || withoutLogs(err1) != withoutLogs(err2) || out1+err1 == "" {
				t.Errorf("with variables: exit %d\n%s%s\nwith flags: exit %d\n%s%s", c1, out1, err1, c2, out2, err2)
			}
		})
	}
	code, _, errOut := runWithEnv(map[string]string{"FLAGSYNC_GIT_DEPTH": "one"}, "validate", "--repo", repo)
	if code != exitUsage || !strings.Contains(errOut, `FLAGSYNC_GIT_DEPTH="one" (--depth)`) {
		t.Errorf("a bad variable: exit %d, %s", code, errOut)
	}
}

// withoutLogs drops log lines, whose times and ports differ between two runs.
func withoutLogs(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "level=") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
