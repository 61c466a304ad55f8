package lifecycle

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// stateWords are the states as the text and Markdown reports count them.
var stateWords = map[string]string{
	StateOverdue:      "overdue",
	StateStale:        "stale",
	StateFullyOn:      "fully on",
	StateFullyOff:     "fully off",
	StateArchivedLive: "archived in the service but still in Git",
	StateNoOwner:      "without an owner",
	StateNoExpiry:     "without an expiry date",
	StatePermanent:    "permanent",
	StateNotLive:      "not in the service",
}

// SummaryLine is the line every rendering ends with: "Report: 5 flags; 2 overdue, 1
// stale, 1 fully on (30 days or more), …". States with no flag are left out.
func (r Report) SummaryLine() string {
	var parts []string
	for _, s := range States {
		n := r.Counts[s]
		if n == 0 {
			continue
		}
		w := fmt.Sprintf("%d %s", n, stateWords[s])
		if s == StateFullyOn || s == StateFullyOff {
			w += fmt.Sprintf(" (%d days or more)", r.Days)
		}
		parts = append(parts, w)
	}
	line := fmt.Sprintf("Report: %d %s", len(r.Flags), plural(len(r.Flags), "flag"))
	if len(parts) > 0 {
		line += "; " + strings.Join(parts, ", ")
	}
	return line + "."
}

// RenderText writes the report as a table for a terminal: one line per flag, in the
// report's order, and the summary line.
func RenderText(w io.Writer, r Report) error {
	fmt.Fprintf(w, "flagsync report at %s (fully on or off: %d days or more)\n\n", r.Now.Format(time.DateOnly), r.Days)
	if len(r.Flags) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FLAG\tSERVICE\tOWNER\tAGE\tEXPIRES\tHEALTH\tSETTLED\tNOTES")
		for _, e := range r.Flags {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Address.String(), e.Service, orDash(e.Owner), age(e),
				expiry(e), orDash(e.Health), orDash(settled(e.Settled)), orDash(notes(e)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintln(w, r.SummaryLine())
	return err
}

// RenderMarkdown writes the report as a Markdown table (for an issue or a pull request),
// and the summary line.
func RenderMarkdown(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### flagsync report at %s\n\n**%s**\n\n", r.Now.Format(time.DateOnly), md(r.SummaryLine()))
	if len(r.Flags) > 0 {
		b.WriteString("| flag | service | owner | age | expires | health | settled | notes |\n|---|---|---|---|---|---|---|---|\n")
		for _, e := range r.Flags {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s | %s |\n", e.Address.String(), md(e.Service), md(orDash(e.Owner)),
				age(e), md(expiry(e)), md(orDash(e.Health)), md(orDash(settled(e.Settled))), md(orDash(notes(e))))
		}
		fmt.Fprintf(&b, "\nSettled: an environment that has served the same outcome to everyone for %d days or more.\n", r.Days)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSONFormatVersion is the format_version of RenderJSON's document.
const JSONFormatVersion = 1

type jsonReport struct {
	FormatVersion int            `json:"format_version"`
	Now           string         `json:"now"`
	Days          int            `json:"days"`
	Flags         []jsonFlag     `json:"flags"`
	Counts        map[string]int `json:"counts"`
}

type jsonFlag struct {
	Service      string    `json:"service"`
	Scope        string    `json:"scope"`
	Key          string    `json:"key"`
	File         string    `json:"file"`
	Line         int       `json:"line"`
	Owner        string    `json:"owner"`
	Expires      string    `json:"expires"`
	Permanent    bool      `json:"permanent"`
	Live         bool      `json:"live"`
	Created      string    `json:"created"` // RFC 3339, "" when unknown
	AgeDays      int       `json:"ageDays"` // -1 when unknown
	OverdueDays  int       `json:"overdueDays"`
	Health       string    `json:"health"`
	Stale        bool      `json:"stale"`
	Archived     bool      `json:"archived"`
	Environments []jsonEnv `json:"environments"`
	Settled      []Settled `json:"settled"`
	States       []string  `json:"states"`
}

type jsonEnv struct {
	Name    string  `json:"name"`
	Serving Serving `json:"serving"`
	Since   string  `json:"since"` // RFC 3339, "" when unknown
}

// RenderJSON writes the report for machines: {"format_version", "now", "days", "flags",
// "counts"}, every key always present and lists never null.
func RenderJSON(w io.Writer, r Report) error {
	out := jsonReport{FormatVersion: JSONFormatVersion, Now: r.Now.Format(time.RFC3339), Days: r.Days, Flags: make([]jsonFlag, 0, len(r.Flags)), Counts: r.Counts}
	for _, e := range r.Flags {
		f := jsonFlag{Service: e.Service, Scope: e.Scope, Key: e.Key, File: e.File, Line: e.Line, Owner: e.Owner, Expires: e.Expires,
			Permanent: e.Permanent, Live: e.Live, Created: rfc3339(e.Created), AgeDays: e.AgeDays, OverdueDays: e.OverdueDays,
			Health: e.Health, Stale: e.Stale, Archived: e.Archived, Environments: make([]jsonEnv, 0, len(e.Environments)),
			Settled: e.Settled, States: e.States}
		for _, env := range e.Environments {
			f.Environments = append(f.Environments, jsonEnv{Name: env.Name, Serving: env.Serving, Since: rfc3339(env.Since)})
		}
		if f.Settled == nil {
			f.Settled = []Settled{}
		}
		if f.States == nil {
			f.States = []string{}
		}
		out.Flags = append(out.Flags, f)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("render report as json: %w", err)
	}
	return nil
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func age(e Entry) string {
	if e.AgeDays < 0 {
		return "-"
	}
	return fmt.Sprintf("%dd", e.AgeDays)
}

func expiry(e Entry) string {
	switch {
	case e.OverdueDays >= 0:
		return fmt.Sprintf("%s (overdue %dd)", e.Expires, e.OverdueDays)
	case e.Expires != "":
		return e.Expires
	case e.Permanent:
		return "permanent"
	}
	return "-"
}

func settled(s []Settled) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = fmt.Sprintf("%s %s %dd", x.Environment, x.Serving, x.Days)
	}
	return strings.Join(parts, ", ")
}

// notes are the states the other columns do not show.
func notes(e Entry) string {
	var out []string
	for _, s := range e.States {
		switch s {
		case StateArchivedLive, StateNoOwner, StateNoExpiry, StateNotLive, StateStale:
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

var mdEscaper = strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;")

func md(s string) string { return mdEscaper.Replace(s) }
