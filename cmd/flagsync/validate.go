package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// validateUsage is validate's help.
func (a *app) validateUsage() string {
	var files []string
	for _, p := range a.providers.All() {
		files = append(files, p.Help().Files)
	}
	return `
Usage: flagsync validate [--repo DIR] [--ref REF] [--path SUBDIR] [--format text|json|github|gitlab]

Checks every flag file (*.yaml, *.yml) under the flag folder against its service's flag
schema and semantic rules (known variations, value types, traffic allocations, unique
rule names, known environments, no duplicate flags), and prints every problem as
file:line:col: field: message. Nothing is sent to any service. The services' files:
` + strings.Join(files, "; ") + `.

--format json prints a report described by schema/validate-report.schema.json (flagsync
schema validate-report); --format gitlab a GitLab code-quality report (artifacts:reports:
codequality), whose problems GitLab shows on the merge request.

Exit status: 0 valid, 1 invalid (or the repository could not be read), 64 bad usage.

Examples:
  flagsync validate --repo examples/flags
  flagsync validate --path flags
  flagsync validate --format json | jq '.diagnostics[].message'
  flagsync validate --path flags --format gitlab > gl-code-quality-report.json
`
}

// validateFormats are validate's output formats.
var validateFormats = []string{"text", "json", "github", "gitlab"}

// validateFormatVersion is the format_version of validate's JSON report (described by
// schema/validate-report.schema.json).
const validateFormatVersion = 1

// validateReport is the JSON output of validate.
type validateReport struct {
	FormatVersion int               `json:"format_version"`
	Valid         bool              `json:"valid"`
	Files         int               `json:"files"`
	Diagnostics   []diag.Diagnostic `json:"diagnostics"`
}

func cmdValidate(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("validate", a.validateUsage())
	src := a.addSourceFlags(fs)
	format := fs.String("format", "text", "output format: text, json, github (annotations on each file and line in GitHub Actions) or gitlab (a code-quality report)")
	fs.Enum("format", validateFormats...)
	logs := a.addLogFlags(fs)
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	logger, err := a.logger(logs)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync validate: %v\n", err)
		return exitUsage
	}

	snap, err := src.open(ctx, logger)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync validate: %v\n", err)
		return exitFail
	}
	sum, invalid, err := a.validateRepository(snap, logger)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync validate: %v\n", err)
		return exitFail
	}

	report := validateReport{FormatVersion: validateFormatVersion, Valid: invalid == nil, Diagnostics: []diag.Diagnostic{}}
	if invalid != nil {
		report.Files = invalid.Files
		report.Diagnostics = invalid.Diagnostics
	} else {
		report.Files = sum.flags
	}
	switch *format {
	case "json":
		err = writeValidateJSON(a.stdout, report)
	case "github":
		err = writeValidateGitHub(a.stdout, report)
		if err == nil {
			err = writeValidateSummary(a.stdout, report, invalid, sum)
		}
	case "gitlab":
		err = writeValidateGitLab(a.stdout, report)
	default:
		err = writeValidateText(a.stdout, report, invalid, sum)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync validate: write report: %v\n", err)
		return exitFail
	}
	if invalid != nil {
		return exitFail
	}
	return exitOK
}

func writeValidateJSON(w io.Writer, r validateReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeValidateGitHub prints each diagnostic as a GitHub Actions workflow command, so
// the check shows it as an annotation on its file and line.
func writeValidateGitHub(w io.Writer, r validateReport) error {
	for _, d := range r.Diagnostics {
		msg := d.Message
		if d.Field != "" {
			msg = d.Field + ": " + msg
		}
		if _, err := fmt.Fprintf(w, "::error file=%s,line=%d,col=%d,title=flagsync validate::%s\n",
			ghProperty(d.File), d.Line, d.Column, ghData(msg)); err != nil {
			return err
		}
	}
	return nil
}

// gitlabIssue is one problem in GitLab's code-quality report: the subset of the Code
// Climate issue format GitLab reads.
type gitlabIssue struct {
	Description string         `json:"description"`
	CheckName   string         `json:"check_name"`
	Fingerprint string         `json:"fingerprint"`
	Severity    string         `json:"severity"`
	Location    gitlabLocation `json:"location"`
}

type gitlabLocation struct {
	Path  string `json:"path"`
	Lines struct {
		Begin int `json:"begin"`
	} `json:"lines"`
}

// writeValidateGitLab prints the problems as a GitLab code-quality report: a JSON array,
// empty when the files are valid. A problem's fingerprint is its file, field and message
// (not its line, so that an edit above it does not make it a new problem), with a count
// for repeats.
func writeValidateGitLab(w io.Writer, r validateReport) error {
	issues := []gitlabIssue{}
	seen := map[string]int{}
	for _, d := range r.Diagnostics {
		msg := d.Message
		if d.Field != "" {
			msg = d.Field + ": " + msg
		}
		id := d.File + "\x00" + msg
		seen[id]++
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d", id, seen[id])))
		is := gitlabIssue{Description: msg, CheckName: "flagsync-validate", Fingerprint: hex.EncodeToString(sum[:]), Severity: "major"}
		is.Location.Path = d.File
		is.Location.Lines.Begin = max(d.Line, 1)
		issues = append(issues, is)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(issues)
}

// ghData and ghProperty escape a workflow command's message and property values.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// writeValidateText prints every diagnostic, then one summary line.
func writeValidateText(w io.Writer, r validateReport, invalid *diag.InvalidError, sum validSummary) error {
	if invalid != nil {
		for _, d := range r.Diagnostics {
			if _, err := fmt.Fprintln(w, d.String()); err != nil {
				return err
			}
		}
	}
	return writeValidateSummary(w, r, invalid, sum)
}

// writeValidateSummary prints the one summary line.
func writeValidateSummary(w io.Writer, r validateReport, invalid *diag.InvalidError, sum validSummary) error {
	if invalid != nil {
		_, err := fmt.Fprintf(w, "%s in %s\n", plural(len(r.Diagnostics), "problem"), plural(invalid.FileCount(), "file"))
		return err
	}
	where := strings.Join(sum.scopes, ", ")
	if sum.policies > 0 {
		// validate compiles the policies; plan, sync and the daemon evaluate them.
		n := "1 policy"
		if sum.policies > 1 {
			n = fmt.Sprintf("%d policies", sum.policies)
		}
		where += "; " + n + " compiled"
	}
	_, err := fmt.Fprintf(w, "%s valid (%s)\n", plural(r.Files, "flag file"), where)
	return err
}

// validSummary is what a valid repository holds.
type validSummary struct {
	flags  int
	scopes []string // per service: its scopes counted, in its words ("2 sites")
	// policies counts flagsync.yaml's policies, compiled for every service.
	policies int
}

// validateRepository loads the flag files of every service the repository needs, each
// with its own loader, and returns every problem of every file as one
// *diag.InvalidError.
func (a *app) validateRepository(snap *snapshot, logger *slog.Logger) (validSummary, *diag.InvalidError, error) {
	var sum validSummary
	l, err := reconcile.Load(a.providers.FileVendors(), reconcile.Source{FS: snap.FS, Dir: snap.Dir, Revision: snap.Revision, Logger: logger, Cache: snap.Cache})
	var invalid *diag.InvalidError
	if err != nil && !errors.As(err, &invalid) {
		return sum, nil, err
	}
	if l != nil {
		sum.policies = len(l.Settings.Policies)
	}
	for _, pt := range l.Parts {
		scopes := map[string]bool{}
		for _, f := range pt.Repo.Files() {
			sum.flags++
			scopes[f.Flag.Scope] = true
		}
		noun := pt.Vendor.Service() + " scope"
		if p, ok := a.providers.Service(pt.Vendor.Service()); ok {
			noun = p.Help().Scope
		}
		sum.scopes = append(sum.scopes, plural(len(scopes), noun))
	}
	return sum, invalid, nil
}

// plural renders "1 file", "2 files".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
