package cli

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

type testFlags struct {
	format, out, key string
	max              int
	wait             time.Duration
	force, noColor   bool
}

func newTestSet() (*FlagSet, *testFlags) {
	fs := NewFlagSet("prog", "cmd", "Usage: prog cmd [flags]\n\nDoes things.")
	f := &testFlags{}
	fs.StringVar(&f.format, "format", "text", "output: text or json")
	fs.Enum("format", "text", "json")
	fs.StringVar(&f.out, "out", "", "write to `FILE`")
	fs.StringVar(&f.key, "ssh-key", "", "key file")
	fs.Env("ssh-key", "PROG_GIT_SSH_KEY_FILE")
	fs.IntVar(&f.max, "max-changes", 500, "most changes")
	fs.DurationVar(&f.wait, "wait", time.Second, "how long")
	fs.BoolVar(&f.force, "force", false, "overwrite")
	fs.BoolVar(&f.noColor, "no-color", false, "no colour")
	fs.EnvPresence("no-color", "NO_COLOR")
	return fs, f
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestEnvSetsEveryFlagAndTheCommandLineWins(t *testing.T) {
	fs, f := newTestSet()
	err := fs.Parse([]string{"--max-changes", "3"}, env(map[string]string{
		"FLAGSYNC_FORMAT": "json", "FLAGSYNC_OUT": "plan.txt", "PROG_GIT_SSH_KEY_FILE": "/k",
		"FLAGSYNC_MAX_CHANGES": "9", "FLAGSYNC_WAIT": "2m", "FLAGSYNC_FORCE": "true", "NO_COLOR": "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := testFlags{format: "json", out: "plan.txt", key: "/k", max: 3, wait: 2 * time.Minute, force: true, noColor: true}
	if *f != want {
		t.Errorf("got %+v, want %+v", *f, want)
	}
	if fs.Given("format") || !fs.Given("max-changes") {
		t.Error("Given: only the command line's flags are given")
	}
	// A variable set to "" is unset: the default stays.
	fs, f = newTestSet()
	if err := fs.Parse(nil, env(map[string]string{"NO_COLOR": "", "FLAGSYNC_MAX_CHANGES": ""})); err != nil || f.noColor || f.max != 500 {
		t.Errorf("empty variables: %+v, %v", *f, err)
	}
}

func TestEnvShownIsNotRead(t *testing.T) {
	fs, f := newTestSet()
	fs.EnvShown("out", "VENDOR_URL")
	if err := fs.Parse(nil, env(map[string]string{"VENDOR_URL": "x", "FLAGSYNC_OUT": "y"})); err != nil || f.out != "" {
		t.Errorf("out = %q, err %v", f.out, err)
	}
	if fs.EnvName("out") != "VENDOR_URL" {
		t.Errorf("EnvName = %s", fs.EnvName("out"))
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--forse"}, nil, "unknown flag --forse; did you mean --force?"},
		{[]string{"-max-chnges", "1"}, nil, "unknown flag --max-chnges; did you mean --max-changes?"},
		{[]string{"--zzzzzz"}, nil, "unknown flag --zzzzzz"},
		{[]string{"--max-changes", "many"}, nil, `invalid value "many" for flag --max-changes: parse error`},
		{[]string{"--out"}, nil, "flag needs an argument: --out"},
		{[]string{"--format", "jsn"}, nil, `--format "jsn": want text or json; did you mean json?`},
		{nil, map[string]string{"FLAGSYNC_FORMAT": "xml"}, `--format "xml": want text or json`},
		{nil, map[string]string{"FLAGSYNC_MAX_CHANGES": "x"}, `FLAGSYNC_MAX_CHANGES="x" (--max-changes): parse error`},
	} {
		fs, _ := newTestSet()
		err := fs.Parse(tc.args, env(tc.env))
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Error() != tc.want {
			t.Errorf("%v %v: err %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
	fs, _ := newTestSet()
	if err := fs.Parse([]string{"-h"}, env(nil)); !errors.Is(err, ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if fs.HelpHint() != "Run 'prog cmd -h' for its flags." {
		t.Errorf("hint %q", fs.HelpHint())
	}
}

func TestHelp(t *testing.T) {
	fs, _ := newTestSet()
	fs.DefaultText("out", "$HOME/out")
	var b bytes.Buffer
	fs.WriteHelp(&b)
	want := `Usage: prog cmd [flags]

Does things.

Flags:
  --force
        overwrite (env FLAGSYNC_FORCE)
  --format text|json
        output: text or json (default "text"; env FLAGSYNC_FORMAT)
  --max-changes int
        most changes (default 500; env FLAGSYNC_MAX_CHANGES)
  --no-color
        no colour (env NO_COLOR)
  --out FILE
        write to FILE (default $HOME/out; env FLAGSYNC_OUT)
  --ssh-key string
        key file (env PROG_GIT_SSH_KEY_FILE)
  --wait duration
        how long (default 1s; env FLAGSYNC_WAIT)
  -h, --help
        show this help
`
	if b.String() != want {
		t.Errorf("help:\n%s\nwant:\n%s", b.String(), want)
	}
	kinds := map[string]string{}
	for _, f := range fs.Flags() {
		kinds[f.Name] = f.Kind
	}
	if kinds["force"] != "bool" || kinds["wait"] != "duration" || kinds["max-changes"] != "int" || kinds["out"] != "string" {
		t.Errorf("kinds %v", kinds)
	}
}

func TestComplete(t *testing.T) {
	fs, _ := newTestSet()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--f"}, []string{"--force", "--format"}},
		{[]string{""}, nil}, // arguments: the shell's file names
		{[]string{"--format", ""}, []string{"text", "json"}},
		{[]string{"--format", "j"}, []string{"json"}},
		{[]string{"--format=t"}, []string{"--format=text"}},
		{[]string{"--out", ""}, nil},   // a file
		{[]string{"--force", ""}, nil}, // a bool takes no value
		{[]string{"-no"}, nil},
		{[]string{"--no"}, []string{"--no-color"}},
	} {
		if got := fs.Complete(tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("Complete(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestScript(t *testing.T) {
	for _, sh := range Shells {
		s, err := Script("flagsync", sh)
		if err != nil || !strings.Contains(s, "flagsync") || !strings.Contains(s, CompleteCommand) || strings.Contains(s, "PROGRAM") {
			t.Errorf("%s: %v\n%s", sh, err, s)
		}
	}
	if _, err := Script("flagsync", "tcsh"); err == nil || err.Error() != `shell "tcsh": want bash, zsh or fish` {
		t.Errorf("tcsh: %v", err)
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	fs, f := newTestSet()
	if err := fs.Parse([]string{"one", "--force", "two", "--max-changes=2", "--", "--out", "x"}, env(nil)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fs.Args(), []string{"one", "two", "--out", "x"}) || fs.NArg() != 4 || fs.Arg(1) != "two" || fs.Arg(9) != "" || !f.force || f.max != 2 || f.out != "" {
		t.Errorf("args %q, flags %+v", fs.Args(), *f)
	}
}
