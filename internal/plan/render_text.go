package plan

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// TextOptions tune RenderText.
type TextOptions struct {
	Color bool // ANSI colours, for a terminal
}

// maxTextValue is the most characters of one value a text line shows.
const maxTextValue = 120

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiDim    = "\x1b[2m"
)

// RenderText writes p for a terminal, in the style of terraform plan: a header per
// flag, one line per change (+ create, ~ update, - archive) with its request, its
// reason and a line per field (before → after), the refused changes (! flag: reason),
// the policies' refusals and warnings (* flag: policy: message),
// the differences left alone (= flag: field: Git's and the service's values, and why),
// the unmanaged flags, the price when the plan has one (the API calls, the budget and
// the time), and one summary line at the end.
func RenderText(w io.Writer, p Plan, opts TextOptions) error {
	t := &textWriter{bw: bufio.NewWriter(w), color: opts.Color}
	if len(p.Changes) > 0 || len(p.Blocked) > 0 || len(p.Notes) > 0 {
		title := "flagsync plan"
		if p.Revision != "" {
			title += " for revision " + ShortRevision(p.Revision)
		}
		fmt.Fprintln(t.bw, t.paint(ansiBold, title))
	}
	held := p.heldChanges()
	for _, g := range groupByFlag(p.Changes) {
		t.flag(g, held)
	}
	t.refused(p)
	writeTextPolicies(t.bw, p, t.paint)
	writeTextWaiting(t.bw, p, t.paint)
	t.notes(p)
	if len(p.Unmanaged) > 0 {
		if len(p.Changes) > 0 || len(p.Blocked) > 0 || len(p.Notes) > 0 {
			fmt.Fprintln(t.bw)
		}
		fmt.Fprintf(t.bw, "Unmanaged flags (in %s, not in Git; left alone):\n", p.ServiceName())
		for _, r := range p.Unmanaged {
			fmt.Fprintf(t.bw, "  %s\n", r)
		}
	}
	if len(p.Changes) > 0 || len(p.Blocked) > 0 || len(p.Unmanaged) > 0 || len(p.Notes) > 0 {
		fmt.Fprintln(t.bw)
	}
	if p.Price != nil {
		for _, l := range p.Price.Lines() {
			fmt.Fprintln(t.bw, l)
		}
	}
	fmt.Fprintln(t.bw, t.paint(ansiBold, p.SummaryLine()))
	return t.bw.Flush()
}

// textWriter writes a text plan, in colour or not.
type textWriter struct {
	bw    *bufio.Writer
	color bool
}

func (t *textWriter) paint(code, s string) string {
	if !t.color {
		return s
	}
	return code + s + ansiReset
}

// flag writes one flag's header and changes, each with its request, reason and fields.
func (t *textWriter) flag(g flagGroup, held map[Address]string) {
	fmt.Fprintln(t.bw)
	fmt.Fprintln(t.bw, t.paint(ansiBold, g.ref.String()))
	for _, c := range g.changes {
		sym, colour := actionSymbol(c.Action)
		head := fmt.Sprintf("%s %d. %s", sym, c.Order, c.Action)
		if c.Environment != "" {
			head += " " + c.Environment
		}
		fmt.Fprintf(t.bw, "  %s  %s %s%s%s\n", t.paint(colour, head), c.Request.Method, c.Request.Path, afterText(c.After), held[c.Address])
		fmt.Fprintf(t.bw, "      %s\n", t.paint(ansiDim, "# "+c.Reason))
		for _, f := range c.Fields {
			sym, colour := fieldSymbol(c.Action, f)
			var line string
			switch sym {
			case "+":
				line = fmt.Sprintf("+ %s: %s", f.Path, textValue(f.After))
			case "-":
				line = fmt.Sprintf("- %s: %s", f.Path, textValue(f.Before))
			default:
				line = fmt.Sprintf("~ %s: %s → %s", f.Path, textValue(f.Before), textValue(f.After))
			}
			fmt.Fprintf(t.bw, "      %s\n", t.paint(colour, line))
		}
	}
}

// refused writes the changes the planner refused, then those the mass-archive guard did.
func (t *textWriter) refused(p Plan) {
	archives, others := p.splitBlocked()
	for _, part := range []struct {
		title   string
		blocked []Blocked
		target  func(Blocked) string
	}{
		{"Refused (" + p.ServiceName() + " will still differ from Git):", others, blockedTarget},
		{"Refused by the mass-archive guard:", archives, func(b Blocked) string { return b.Flag().String() }},
	} {
		if len(part.blocked) == 0 {
			continue
		}
		fmt.Fprintln(t.bw)
		fmt.Fprintln(t.bw, t.paint(ansiRed, part.title))
		for _, b := range part.blocked {
			fmt.Fprintf(t.bw, "  ! %s: %s\n", part.target(b), b.Reason)
		}
	}
}

// notes writes the differences left alone.
func (t *textWriter) notes(p Plan) {
	if len(p.Notes) == 0 {
		return
	}
	fmt.Fprintln(t.bw)
	fmt.Fprintln(t.bw, t.paint(ansiBold, "Left alone (owned outside Git, or "+p.ServiceName()+"'s automation; nothing is written):"))
	for _, n := range p.Notes {
		fmt.Fprintf(t.bw, "  = %s: %s: %s in Git, %s in %s\n", n.Flag(), n.Path, textValue(n.Git), textValue(n.Live), p.ServiceName())
		fmt.Fprintf(t.bw, "      %s\n", t.paint(ansiDim, "# "+n.Reason))
	}
}

func actionSymbol(a Action) (string, string) {
	switch a {
	case ActionCreate:
		return "+", ansiGreen
	case ActionArchive:
		return "-", ansiRed
	}
	return "~", ansiYellow
}

// fieldSymbol is + for a value that appears, - for one that goes, ~ for one that changes.
func fieldSymbol(a Action, f FieldChange) (string, string) {
	switch {
	case a == ActionCreate || f.Before == nil && f.After != nil:
		return "+", ansiGreen
	case f.After == nil && f.Before != nil:
		return "-", ansiRed
	}
	return "~", ansiYellow
}

// textValue is v as compact JSON, cut to maxTextValue characters.
func textValue(v any) string { return truncate(compactJSON(v), maxTextValue) }

// truncate cuts s to at most n characters, saying how many were left out.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	rest := len(r) - n
	return string(r[:n]) + fmt.Sprintf("… (%d more characters)", rest)
}

type flagGroup struct {
	ref     Address
	changes []Change
}

// groupByFlag splits changes (already in plan order, so grouped) into runs per flag.
func groupByFlag(changes []Change) []flagGroup {
	var out []flagGroup
	for i := range changes {
		c := changes[i]
		if n := len(out); n > 0 && out[n-1].ref == c.Flag() {
			out[n-1].changes = append(out[n-1].changes, c)
			continue
		}
		out = append(out, flagGroup{ref: c.Flag(), changes: []Change{c}})
	}
	return out
}

// countActions describes a flag's changes, e.g. "1 create, 2 updates".
func countActions(changes []Change) string {
	var create, update, archive int
	for i := range changes {
		switch changes[i].Action {
		case ActionCreate:
			create++
		case ActionUpdate:
			update++
		case ActionArchive:
			archive++
		}
	}
	var parts []string
	if create > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", create, plural(create, "create")))
	}
	if update > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", update, plural(update, "update")))
	}
	if archive > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", archive, plural(archive, "archive")))
	}
	return strings.Join(parts, ", ")
}

// compactJSON renders v as one line of JSON without HTML escaping, for people.
func compactJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "<" + err.Error() + ">"
	}
	return strings.TrimRight(buf.String(), "\n")
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// writeTextWaiting writes the changes that wait for approval in the service, if any.
func writeTextWaiting(w io.Writer, p Plan, paint func(code, s string) string) {
	waiting := p.AwaitingApproval()
	if len(waiting) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, paint(ansiYellow, "Awaiting approval in "+p.ServiceName()+" (not written or filed again while the request is open):"))
	for _, b := range waiting {
		fmt.Fprintf(w, "  ? %s: %s\n", blockedTarget(b), b.Reason)
	}
}

// heldChanges marks the changes that wait for approval in the service: by address, the
// text that follows their request, e.g. " [awaiting approval: change request cr-1]".
func (p Plan) heldChanges() map[Address]string {
	out := map[Address]string{}
	for _, b := range p.AwaitingApproval() {
		out[b.Address] = " [awaiting approval: change request " + b.ChangeRequest + "]"
	}
	return out
}

// afterText is " (after 2, 5)" for a change that needs other changes first, else "".
func afterText(after []int) string {
	if len(after) == 0 {
		return ""
	}
	parts := make([]string, len(after))
	for i, o := range after {
		parts[i] = fmt.Sprint(o)
	}
	return " (after " + strings.Join(parts, ", ") + ")"
}

// blockedTarget names what a refused or waiting change touches: scope/key, with the
// environment when it has one.
func blockedTarget(b Blocked) string {
	if b.Environment != "" {
		return b.Flag().String() + " (" + b.Environment + ")"
	}
	return b.Flag().String()
}
