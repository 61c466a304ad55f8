package kdoctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Preface is the line doctor prints before it starts: what it will do, to what, and the
// most API calls it will make. where names the API (for example its URL).
func (d *Doctor) Preface(where string) string {
	return fmt.Sprintf("flagsync doctor: probing site %s at %s with at most %d API calls (token requests included); scratch flag %s, archived at the end",
		d.site, where, d.max, d.key)
}

// columns of the text table: a status mark, then the four the report is about.
var columns = []struct {
	title string
	width int
}{
	{"", 4},
	{"behaviour", 26},
	{"expected by flagsync", 32},
	{"observed", 38},
	{"consequence", 44},
}

// Mark is the status column of a row in the text table: ok and FAIL for relied-upon
// behaviours, info for readings, "--" for a relied-upon behaviour the account gave
// nothing to probe with, skip for a row not probed.
func (r *Row) Mark() string {
	switch {
	case r.Holds != nil && *r.Holds:
		return "ok"
	case r.Holds != nil:
		return "FAIL"
	case r.inconclusive:
		return "--"
	case !r.probed:
		return "skip"
	}
	return "info"
}

// WriteText writes the report as an aligned table, then the calls used, the scratch
// flag's fate and one summary line.
func (rep *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	header := make([]string, len(columns))
	for i, c := range columns {
		header[i] = c.title
	}
	writeTableRow(&b, header)
	rule := make([]string, len(columns))
	for i, c := range columns {
		if c.title != "" {
			rule[i] = strings.Repeat("-", c.width)
		}
	}
	writeTableRow(&b, rule)
	for i := range rep.Rows {
		r := &rep.Rows[i]
		consequence := r.Consequence
		if r.Advice != "" {
			consequence += "\nTo do: " + r.Advice
		}
		if i > 0 {
			b.WriteString("\n")
		}
		writeTableRow(&b, []string{r.Mark(), r.Behaviour, r.Expected, r.Observed, consequence})
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "API calls used: %d of at most %d (token requests included)\n", rep.CallsUsed, rep.CallsBudget)
	if rep.Archived {
		fmt.Fprintf(&b, "scratch flag %s: archived\n", rep.ScratchFlag)
	} else {
		fmt.Fprintf(&b, "scratch flag %s: NOT archived (see the archive row)\n", rep.ScratchFlag)
	}
	b.WriteString(rep.summary() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// summary is the report's last line.
func (rep *Report) summary() string {
	relied, readings := 0, 0
	for _, r := range rep.Rows {
		if r.Kind == Relied {
			relied++
		} else if r.probed {
			readings++
		}
	}
	failed := rep.Failures()
	if len(failed) == 0 {
		var open []string
		for _, r := range rep.Rows {
			if r.Kind == Relied && r.inconclusive {
				open = append(open, r.ID)
			}
		}
		if len(open) > 0 {
			return fmt.Sprintf("every behaviour flagsync relies on that could be probed holds (%d of %d; not probable on this site: %s; %d readings detected): flagsync can manage this account",
				relied-len(open), relied, strings.Join(open, ", "), readings)
		}
		return fmt.Sprintf("every behaviour flagsync relies on holds (%d of %d; %d readings detected): flagsync can manage this account", relied, relied, readings)
	}
	ids := make([]string, len(failed))
	for i, r := range failed {
		ids[i] = r.ID
	}
	return fmt.Sprintf("%d of %d behaviours flagsync relies on do not hold or could not be probed: %s; see \"To do\" above",
		len(failed), relied, strings.Join(ids, ", "))
}

// writeTableRow writes one row of cells, each wrapped to its column's width.
func writeTableRow(b *strings.Builder, cells []string) {
	wrapped := make([][]string, len(cells))
	lines := 1
	for i, c := range cells {
		wrapped[i] = wrap(c, columns[i].width)
		lines = max(lines, len(wrapped[i]))
	}
	for l := range lines {
		var line strings.Builder
		for i := range cells {
			cell := ""
			if l < len(wrapped[i]) {
				cell = wrapped[i][l]
			}
			if i < len(cells)-1 {
				fmt.Fprintf(&line, "%-*s  ", columns[i].width, cell)
			} else {
				line.WriteString(cell)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// wrap breaks s into lines of at most width runes at spaces (and at newlines in s);
// a word longer than width is cut.
func wrap(s string, width int) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		var line []rune
		for _, word := range strings.Fields(para) {
			wr := []rune(word)
			for len(wr) > width {
				if len(line) > 0 {
					out = append(out, string(line))
					line = nil
				}
				out = append(out, string(wr[:width]))
				wr = wr[width:]
			}
			switch {
			case len(line) == 0:
				line = wr
			case len(line)+1+len(wr) <= width:
				line = append(append(line, ' '), wr...)
			default:
				out = append(out, string(line))
				line = wr
			}
		}
		if len(line) > 0 {
			out = append(out, string(line))
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

// WriteJSON writes the report as one indented JSON object (see Report).
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}
