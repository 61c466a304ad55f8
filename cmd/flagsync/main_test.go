package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/buildinfo"
)

// TestMain lets the test binary stand in for flagsync: with FLAGSYNC_TEST_MAIN=1 it is
// the program (what main does), so the shells and `script` can run it as a process.
func TestMain(m *testing.M) {
	if os.Getenv("FLAGSYNC_TEST_MAIN") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	// The programs the tests start keep their caches (the validation cache is on by
	// default) in a folder of this run, not in the home of whoever runs the tests.
	cache, err := os.MkdirTemp("", "flagsync-test-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", cache)
	code := m.Run()
	os.RemoveAll(cache)
	os.Exit(code)
}

// flagsyncOnPath puts a `flagsync` on PATH that runs this test binary as the program, and
// returns its folder.
func flagsyncOnPath(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := "#!/bin/sh\nFLAGSYNC_TEST_MAIN=1 exec " + shellQuote(self) + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "flagsync"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func runArgs(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	a := &app{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	code := a.dispatch(context.Background(), args)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	info := buildinfo.Get()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runArgs(args...)
		lines := strings.Split(out, "\n")
		if code != exitOK || lines[0] != "flagsync "+info.Version || !strings.Contains(out, "go:      "+info.GoVersion) || !strings.Contains(out, "commit:  ") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	code, out, _ := runArgs("version", "--format", "json")
	var got buildinfo.Info
	if err := json.Unmarshal([]byte(out), &got); code != exitOK || err != nil || got != info {
		t.Errorf("version --format json: exit %d, %v: %s", code, err, out)
	}
}

// TestHelpCommand: `flagsync help plan` is `flagsync plan -h`, on stdout; a mistyped
// command or flag is one line with the closest match and where to look.
func TestHelpCommand(t *testing.T) {
	for _, name := range commandNames() {
		c1, help, _ := runArgs("help", name)
		c2, dashH, _ := runArgs(name, "-h")
		c3, long, _ := runArgs(name, "--help")
		if c1 != exitOK || c2 != exitOK || c3 != exitOK || help != dashH || help != long || !strings.HasPrefix(help, "Usage: flagsync "+name) {
			t.Errorf("help %s: exits %d %d %d; help:\n%s\n-h:\n%s", name, c1, c2, c3, help, dashH)
		}
	}
	code, out, _ := runArgs("help")
	if code != exitOK || !strings.Contains(out, "Commands:") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pln"}, "flagsync: unknown command \"pln\"; did you mean \"plan\"?\nRun 'flagsync -h' for the commands.\n"},
		{[]string{"help", "valdate"}, "flagsync: unknown command \"valdate\"; did you mean \"validate\"?\nRun 'flagsync -h' for the commands.\n"},
		{[]string{"export", "--forse"}, "flagsync export: unknown flag --forse; did you mean --force?\nRun 'flagsync export -h' for its flags.\n"},
		{[]string{"sync", "--max-change", "3"}, "flagsync sync: unknown flag --max-change; did you mean --max-changes?\nRun 'flagsync sync -h' for its flags.\n"},
		{[]string{"plan", "--format", "yaml"}, "flagsync plan: --format \"yaml\": want text, markdown or json\nRun 'flagsync plan -h' for its flags.\n"},
		{[]string{"completion", "tcsh"}, "flagsync completion: shell \"tcsh\": want bash, zsh or fish\n"},
		{[]string{"schema", "plans"}, "flagsync schema: \"plans\": want flag, settings, plan, validate-report\nRun 'flagsync schema -h' for its flags.\n"},
	} {
		code, out, errOut := runArgs(tc.args...)
		if code != exitUsage || errOut != tc.want || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant:\n%s", tc.args, code, out, errOut, tc.want)
		}
	}
}

// TestTopLevelUsage: the command list is aligned, whatever the longest name.
func TestTopLevelUsage(t *testing.T) {
	code, out, _ := runArgs("-h")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	col := -1
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(line, "  ") {
			continue
		}
		if _, ok := commands[f[0]]; !ok {
			continue
		}
		after := len("  " + f[0])
		i := after + strings.Index(line[after:], f[1])
		if col >= 0 && i != col {
			t.Errorf("misaligned: %q (summary at column %d, others at %d)", line, i, col)
		}
		col = i
	}
	if code, _, errOut := runArgs(); code != exitUsage || !strings.Contains(errOut, "Commands:") {
		t.Errorf("no command: exit %d\n%s", code, errOut)
	}
}

// TestLogFormatHasOneDefault: every command's --log-format line names one default.
func TestLogFormatHasOneDefault(t *testing.T) {
	for _, name := range commandNames() {
		help := helpText(t, name)
		i := strings.Index(help, "  --log-format")
		if i < 0 {
			continue
		}
		line := strings.SplitN(help[i:], "\n", 3)[1]
		if strings.Count(line, "default") != 1 || !strings.Contains(line, `default "text"`) {
			t.Errorf("%s --log-format: %q", name, line)
		}
	}
}

// TestCommentArgumentNames: the help names each argument by what it is, not by the
// backquoted word of its description.
func TestCommentArgumentNames(t *testing.T) {
	help := helpText(t, "comment")
	for _, want := range []string{"--file FILE\n", "--plan-json FILE\n", "--validate-json FILE\n", "--path DIR\n", "--author LOGIN\n", "--sha SHA\n", "--target-url URL\n"} {
		if !strings.Contains(help, want) {
			t.Errorf("comment -h lacks %q", want)
		}
	}
	if strings.Contains(help, "`") {
		t.Error("comment -h shows a backquote")
	}
}

// TestCompletionCandidates checks what the scripts are given, for commands, flags and
// the values of --format, --vendor and --log-format.
func TestCompletionCandidates(t *testing.T) {
	complete := func(words ...string) []string {
		_, out, _ := runArgs(append([]string{"__complete"}, words...)...)
		return strings.Fields(out)
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"va"}, []string{"validate"}},
		{[]string{"s"}, []string{"sandbox", "schema", "sync"}},
		{[]string{"help", "pl"}, []string{"plan"}},
		{[]string{"plan", "--for"}, []string{"--format"}},
		{[]string{"plan", "--format", ""}, []string{"text", "markdown", "json"}},
		{[]string{"validate", "--format", "g"}, []string{"github", "gitlab"}},
		{[]string{"validate", "--format=j"}, []string{"--format=json"}},
		{[]string{"export", "--vendor", ""}, []string{"kameleoon", "split", "unleash"}},
		{[]string{"sandbox", "--vendor", "s"}, []string{"split"}},
		{[]string{"run", "--log-format", ""}, []string{"text", "json"}},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}},
		{[]string{"schema", ""}, []string{"flag", "settings", "plan", "validate-report"}},
		{[]string{"schema", "--vendor", ""}, []string{"kameleoon", "split", "unleash"}},
		{[]string{"plan", "--out", ""}, nil},
	} {
		if got := complete(tc.words...); !slices.Equal(got, tc.want) {
			t.Errorf("complete %q = %q, want %q", tc.words, got, tc.want)
		}
	}
}

// TestCompletionScripts runs each shell's script in the shell itself, with flagsync on
// PATH, and reads back what it completes.
func TestCompletionScripts(t *testing.T) {
	flagsyncOnPath(t)
	scriptFile := func(shell string) string {
		_, s, _ := runArgs("completion", shell)
		p := filepath.Join(t.TempDir(), "completion."+shell)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shells := map[string]struct {
		script string
		check  func(script, line string) (string, error)
	}{
		"bash": {script: `source "$1"; COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< "$COMP_LINE"; ` +
			`[[ $COMP_LINE == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _flagsync_complete; printf '%s\n' "${COMPREPLY[@]}"`},
		// compadd and _files exist only inside zsh's completion system: stand-ins print
		// what the function offers.
		"zsh": {script: `compdef() { :; }; compadd() { shift ${@[(i)--]}; print -l -- "$@"; }; _files() { print FILES; }; ` +
			`source "$1"; words=(${(z)2}); [[ $2 == *" " ]] && words+=(""); CURRENT=${#words}; _flagsync`},
		"fish": {script: `source $argv[1]; complete -C"$argv[2]"`},
	}
	for shell, sh := range shells {
		t.Run(shell, func(t *testing.T) {
			bin, err := exec.LookPath(shell)
			if err != nil {
				if os.Getenv("FLAGSYNC_REQUIRE_SHELLS") != "" {
					t.Fatalf("%s is not installed", shell)
				}
				t.Skipf("%s is not installed", shell)
			}
			path := scriptFile(shell)
			for _, tc := range []struct{ line, want string }{
				{"flagsync pla", "plan"},
				{"flagsync plan --detailed", "--detailed-exitcode"},
				{"flagsync validate --format gi", "github gitlab"},
				{"flagsync export --vendor sp", "split"},
			} {
				args := []string{"-c", sh.script, shell, path, tc.line}
				if shell == "fish" {
					args = []string{"-c", sh.script, path, tc.line}
				}
				out, err := exec.Command(bin, args...).CombinedOutput()
				got := strings.Join(strings.Fields(stripFishDescriptions(string(out))), " ")
				if err != nil || got != tc.want {
					t.Errorf("%q: got %q, want %q (err %v)\n%s", tc.line, got, tc.want, err, out)
				}
			}
		})
	}
}

// stripFishDescriptions drops what fish prints after a tab (a candidate's description).
func stripFishDescriptions(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, strings.SplitN(l, "\t", 2)[0])
	}
	return strings.Join(lines, "\n")
}
