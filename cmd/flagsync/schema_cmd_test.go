package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/schema"
)

const schemaDir = "../../schema"

// TestSchemaCommandWritesTheShippedSchemas: what flagsync schema prints is the file in
// schema/, byte for byte, and each has its $id.
func TestSchemaCommandWritesTheShippedSchemas(t *testing.T) {
	for _, tc := range []struct {
		args []string
		file string
	}{
		{[]string{"schema", "flag"}, "flag.schema.json"},
		{[]string{"schema", "settings"}, "settings.schema.json"},
		{[]string{"schema", "flag", "--vendor", "kameleoon"}, "flag.schema.json"},
		{[]string{"schema", "--vendor", "split", "flag"}, "split-flag.schema.json"},
		{[]string{"schema", "settings", "--vendor=split"}, "split-settings.schema.json"},
		{[]string{"schema", "plan"}, "plan.schema.json"},
		{[]string{"schema", "validate-report"}, "validate-report.schema.json"},
	} {
		code, out, errOut := runArgs(tc.args...)
		want, err := os.ReadFile(filepath.Join(schemaDir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if code != exitOK || out != string(want) {
			t.Errorf("%v: exit %d, %s; not %s", tc.args, code, errOut, tc.file)
		}
		var doc struct {
			ID string `json:"$id"`
		}
		if err := json.Unmarshal(want, &doc); err != nil || doc.ID != schema.BaseURL+tc.file {
			t.Errorf("%s: $id %q, want %q (%v)", tc.file, doc.ID, schema.BaseURL+tc.file, err)
		}
	}
	for _, args := range [][]string{{"schema"}, {"schema", "flag", "plan"}, {"schema", "flag", "--vendor", "nope"}, {"schema", "plan", "--vendor", "split"}} {
		if code, _, errOut := runArgs(args...); code != exitUsage {
			t.Errorf("%v: exit %d, %s", args, code, errOut)
		}
	}
}

// TestValidateGitLabReport: --format gitlab is GitLab's code-quality report, an array
// of issues with description, check_name, fingerprint, severity, location.path and
// location.lines.begin; fingerprints are unique and do not change with the line.
func TestValidateGitLabReport(t *testing.T) {
	repo := writeValidateRepo(t, validateBadRepo)
	code, out, _ := runValidate(t, "--repo", repo, "--path", "flags", "--format", "gitlab")
	var issues []struct {
		Description string `json:"description"`
		CheckName   string `json:"check_name"`
		Fingerprint string `json:"fingerprint"`
		Severity    string `json:"severity"`
		Location    struct {
			Path  string `json:"path"`
			Lines struct {
				Begin int `json:"begin"`
			} `json:"lines"`
		} `json:"location"`
	}
	if err := json.Unmarshal([]byte(out), &issues); err != nil || code != exitFail || len(issues) != 3 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	seen := map[string]bool{}
	for _, is := range issues {
		if is.Description == "" || is.CheckName != "flagsync-validate" || len(is.Fingerprint) != 64 || is.Severity != "major" ||
			!strings.HasPrefix(is.Location.Path, "flags/") || is.Location.Lines.Begin < 1 || seen[is.Fingerprint] {
			t.Errorf("issue %+v", is)
		}
		seen[is.Fingerprint] = true
	}
	if issues[0].Location.Path != "flags/a.yaml" || issues[0].Location.Lines.Begin != 5 || !strings.HasPrefix(issues[0].Description, "environments.prod: unknown environment") {
		t.Errorf("first issue %+v", issues[0])
	}
	// The same problem one line lower keeps its fingerprint: GitLab does not see it as new.
	moved := map[string]string{}
	for k, v := range validateBadRepo {
		moved[k] = v
	}
	moved["flags/a.yaml"] = strings.Replace(moved["flags/a.yaml"], "\n", "\n# a comment\n", 1)
	code, out2, _ := runValidate(t, "--repo", writeValidateRepo(t, moved), "--path", "flags", "--format", "gitlab")
	if code != exitFail || !strings.Contains(out2, issues[0].Fingerprint) || !strings.Contains(out2, `"begin": 6`) {
		t.Errorf("moved one line down:\n%s", out2)
	}
	code, out, _ = runValidate(t, "--repo", filepath.Join("..", "..", "examples", "flags"), "--format", "gitlab")
	if code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("valid: exit %d, %q", code, out)
	}
}

// ajv returns node and the ajvcheck folder, or skips when its packages are not installed.
func ajv(t *testing.T) (node, dir string) {
	t.Helper()
	dir = filepath.Join(schemaDir, "ajvcheck")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ajv")); errors.Is(err, fs.ErrNotExist) {
		t.Skip("schema/ajvcheck/node_modules is absent: run `npm ci --prefix schema/ajvcheck` to check the schemas with ajv")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node_modules is installed but node is not on PATH: %v", err)
	}
	return node, dir
}

// ajvValidate validates files against schemaFile with ajv and returns the files it
// refused.
func ajvValidate(t *testing.T, schemaFile string, files ...string) []string {
	t.Helper()
	node, dir := ajv(t)
	out, err := exec.Command(node, append([]string{filepath.Join(dir, "validate.mjs"), schemaFile}, files...)...).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("ajv %s: %v\n%s", schemaFile, err, out)
	}
	var refused []string
	for _, f := range files {
		if !bytes.Contains(out, []byte("\nok "+f+"\n")) {
			refused = append(refused, f)
		}
	}
	t.Logf("ajv %s:\n%s", filepath.Base(schemaFile), out)
	return refused
}

// write puts b in a file of dir and returns its path.
func write(t *testing.T, dir, name, b string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestContractsValidateInAjv checks the JSON plan (Kameleoon, Split, a plan with notes
// and refusals, invalid files) and the validate report (valid and invalid) against the
// shipped schemas, and the flag-file schemas flagsync schema prints against the example
// repositories, all in ajv: a validator that is not the one flagsync uses.
func TestContractsValidateInAjv(t *testing.T) {
	ajv(t)
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		_, out, errOut := runWithEnv(nil, args...)
		if !strings.HasPrefix(strings.TrimSpace(out), "{") && !strings.HasPrefix(strings.TrimSpace(out), "[") {
			t.Fatalf("%v: not JSON:\n%s\n%s", args, out, errOut)
		}
		return write(t, dir, name, out)
	}
	examples := filepath.Join("..", "..", "examples")
	invalid := writeValidateRepo(t, validateBadRepo)
	plans := []string{
		run("plan-kameleoon.json", "plan", "--sandbox", "--repo", filepath.Join(examples, "flags"), "--sandbox-state", filepath.Join(dir, "k.json"), "--format", "json"),
		run("plan-split.json", "plan", "--sandbox", "--repo", filepath.Join(examples, "split"), "--split-sandbox-state", filepath.Join(dir, "s.json"), "--format", "json"),
		run("plan-invalid.json", "plan", "--sandbox", "--repo", invalid, "--path", "flags", "--sandbox-state", filepath.Join(dir, "i.json"), "--format", "json"),
	}
	// A converged Kameleoon sandbox with live changes: notes, unmanaged flags and a
	// pruning plan give the optional parts of the shape.
	syncArgs := []string{"--sandbox", "--repo", filepath.Join(examples, "flags"), "--sandbox-state", filepath.Join(dir, "k2.json")}
	if code, _, errOut := runWithEnv(nil, append([]string{"sync"}, syncArgs...)...); code != exitOK {
		t.Fatalf("sync: exit %d\n%s", code, errOut)
	}
	plans = append(plans, run("plan-converged.json", append([]string{"plan", "--format", "json", "--prune"}, syncArgs...)...))
	if refused := ajvValidate(t, filepath.Join(schemaDir, "plan.schema.json"), plans...); len(refused) > 0 {
		t.Errorf("ajv refused %v", refused)
	}
	for _, p := range plans[:2] {
		if b, _ := os.ReadFile(p); !bytes.Contains(b, []byte(`"action": "create"`)) {
			t.Errorf("%s has no change: the check proves little", p)
		}
	}

	reports := []string{
		run("report-valid.json", "validate", "--repo", filepath.Join(examples, "flags"), "--format", "json"),
		run("report-split.json", "validate", "--repo", filepath.Join(examples, "split"), "--format", "json"),
		run("report-invalid.json", "validate", "--repo", invalid, "--path", "flags", "--format", "json"),
	}
	if refused := ajvValidate(t, filepath.Join(schemaDir, "validate-report.schema.json"), reports...); len(refused) > 0 {
		t.Errorf("ajv refused %v", refused)
	}

	// The schemas refuse what they must, or the checks above prove nothing.
	bad := []string{
		write(t, dir, "bad-version.json", strings.Replace(readFile(t, plans[0]), `"format_version": 2`, `"format_version": 3`, 1)),
		write(t, dir, "bad-action.json", strings.Replace(readFile(t, plans[0]), `"action": "create"`, `"action": "delete"`, 1)),
		write(t, dir, "bad-key.json", strings.Replace(readFile(t, plans[0]), `"unmanaged": [`, `"unmanged": [], "unmanaged": [`, 1)),
	}
	if refused := ajvValidate(t, filepath.Join(schemaDir, "plan.schema.json"), bad...); len(refused) != len(bad) {
		t.Errorf("ajv accepted a broken plan: refused only %v", refused)
	}
	badReport := write(t, dir, "bad-report.json", strings.Replace(readFile(t, reports[0]), `"valid": true`, `"valid": "yes"`, 1))
	if refused := ajvValidate(t, filepath.Join(schemaDir, "validate-report.schema.json"), badReport); len(refused) != 1 {
		t.Error("ajv accepted a broken validate report")
	}
}

// TestFlagSchemasValidateInAjv: the flag-file and settings schemas, as flagsync schema
// prints them for each vendor, compile in ajv, accept the example repositories and refuse
// nonsense.
func TestFlagSchemasValidateInAjv(t *testing.T) {
	ajv(t)
	dir := t.TempDir()
	examples := filepath.Join("..", "..", "examples")
	run := func(name string, args ...string) string {
		t.Helper()
		_, out, errOut := runWithEnv(nil, args...)
		if !strings.HasPrefix(out, "{") {
			t.Fatalf("%v: not a schema:\n%s", args, errOut)
		}
		return write(t, dir, name, out)
	}
	for _, tc := range []struct {
		vendor, folder string
	}{{"kameleoon", "flags"}, {"split", "split"}} {
		var flags, settings []string
		err := filepath.WalkDir(filepath.Join(examples, tc.folder), func(p string, d fs.DirEntry, err error) error {
			switch {
			case err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml"):
				return err
			case d.Name() == "flagsync.yaml":
				settings = append(settings, p)
			default:
				flags = append(flags, p)
			}
			return nil
		})
		if err != nil || len(flags) < 3 || len(settings) != 1 {
			t.Fatalf("%s: %d flag files, %d settings, %v", tc.folder, len(flags), len(settings), err)
		}
		flagSchema := run(tc.vendor+"-flag.schema.json", "schema", "flag", "--vendor", tc.vendor)
		settingsSchema := run(tc.vendor+"-settings.schema.json", "schema", "settings", "--vendor", tc.vendor)
		if refused := ajvValidate(t, flagSchema, flags...); len(refused) > 0 {
			t.Errorf("%s flag schema: ajv refused %v", tc.vendor, refused)
		}
		if refused := ajvValidate(t, settingsSchema, settings...); len(refused) > 0 {
			t.Errorf("%s settings schema: ajv refused %v", tc.vendor, refused)
		}
		if refused := ajvValidate(t, flagSchema, write(t, dir, tc.vendor+"-bad.yaml", "nonsense: 1\n")); len(refused) != 1 {
			t.Errorf("%s flag schema accepted nonsense", tc.vendor)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
