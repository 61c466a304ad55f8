package plan

import (
	"fmt"
	"io"
	"strings"
)

// MarkdownMarker is the first line of every Markdown plan, hidden when rendered, so a
// pipeline can find its earlier comment on a pull request and update it.
const MarkdownMarker = "<!-- flagsync-plan -->"

// DefaultMarkdownMaxChars keeps a comment well under GitHub's 65,536-character limit.
const DefaultMarkdownMaxChars = 60000

// MarkdownOptions tune RenderMarkdown.
type MarkdownOptions struct {
	// MaxChars is the most characters the comment may have; 0 means
	// DefaultMarkdownMaxChars. The summary and a note of what was folded are always
	// kept, so a limit below a few hundred characters cannot be met.
	MaxChars int
}

// maxMarkdownValue is the most characters of one value a table cell shows.
const maxMarkdownValue = 300

// maxFoldedBlocked is how many refused changes of one kind a folded comment still lists.
const maxFoldedBlocked = 20

// Detail levels, from everything down to a list of flags that fits.
const (
	mdFull       = iota // a <details> section per flag with a field table per change
	mdChanges           // a <details> section per flag, changes and reasons without fields
	mdFlags             // one line per flag
	mdFlagsTrunc        // as many flag lines as fit
)

// RenderMarkdown writes p as a pull-request comment: the marker line, the summary, a
// collapsible section per flag, and the summary line at the end. When the full plan
// would exceed opts.MaxChars it folds, dropping field tables first, then the per-flag
// sections, then flags from the end of the list, and says so in a note under the
// summary.
func RenderMarkdown(w io.Writer, p Plan, opts MarkdownOptions) error {
	limit := opts.MaxChars
	if limit <= 0 {
		limit = DefaultMarkdownMaxChars
	}
	var out string
	for level := mdFull; level <= mdFlagsTrunc; level++ {
		out = markdown(p, level, limit)
		if len(out) <= limit {
			break
		}
	}
	_, err := io.WriteString(w, out)
	return err
}

func markdown(p Plan, level, limit int) string {
	var b strings.Builder
	b.WriteString(MarkdownMarker + "\n")
	b.WriteString("### flagsync plan")
	if p.Revision != "" {
		b.WriteString(" for `" + ShortRevision(p.Revision) + "`")
	}
	b.WriteString("\n\n")
	groups := groupByFlag(p.Changes)
	s := p.Summary()
	if s.Changes() > 0 || s.Blocked > 0 || s.Notes > 0 || s.AwaitingApproval > 0 || s.Warnings > 0 {
		fmt.Fprintf(&b, "**%s**\n\n", mdEscape(p.SummaryLine()))
	}
	if len(groups) > 0 {
		fmt.Fprintf(&b, "%d %s to change with %d API %s, in the order shown.\n\n",
			len(groups), plural(len(groups), "flag"), s.Changes(), plural(s.Changes(), "write"))
	}
	if p.Price != nil {
		for _, sp := range p.Price.Services {
			b.WriteString(mdEscape(sp.line(p.Price.DryRun)))
			if l := sp.budgetLine(p.Price.DryRun); l != "" {
				b.WriteString("<br>\n" + mdEscape(l))
			}
			b.WriteString("\n\n")
		}
	}
	switch level {
	case mdChanges:
		b.WriteString("> [!NOTE]\n> Folded to stay under " + fmt.Sprint(limit) + " characters: field details are left out. Run `flagsync plan` for the full plan.\n\n")
	case mdFlags, mdFlagsTrunc:
		b.WriteString("> [!NOTE]\n> Folded to stay under " + fmt.Sprint(limit) + " characters: only the flags are listed, without their changes. Run `flagsync plan` for the full plan.\n\n")
	}
	writeMarkdownCallouts(&b, p, level)

	held := p.heldChanges()
	tail := "\n" + mdEscape(p.SummaryLine()) + "\n"
	switch level {
	case mdFull, mdChanges:
		for _, g := range groups {
			fmt.Fprintf(&b, "<details><summary><code>%s</code>: %s</summary>\n\n", cell(g.ref.String()), countActions(g.changes))
			for _, c := range g.changes {
				writeMarkdownChange(&b, c, held[c.Address], level == mdFull)
			}
			b.WriteString("</details>\n\n")
		}
		if len(p.Unmanaged) > 0 {
			fmt.Fprintf(&b, "<details><summary>%d unmanaged %s left alone (in %s, not in Git)</summary>\n\n",
				len(p.Unmanaged), plural(len(p.Unmanaged), "flag"), p.ServiceName())
			for _, r := range p.Unmanaged {
				fmt.Fprintf(&b, "- `%s`\n", r)
			}
			b.WriteString("\n</details>\n")
		}
	case mdFlags, mdFlagsTrunc:
		for i, g := range groups {
			line := fmt.Sprintf("- `%s`: %s\n", g.ref, countActions(g.changes))
			if level == mdFlagsTrunc {
				more := fmt.Sprintf("- … and %d more %s\n", len(groups)-i, plural(len(groups)-i, "flag"))
				if b.Len()+len(line)+len(more)+len(tail) > limit {
					b.WriteString(more)
					break
				}
			}
			b.WriteString(line)
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n" + tail
}

// writeMarkdownCallouts writes what the plan will not do, under the summary: the
// policies' refusals and warnings, the refused changes, those awaiting approval and the
// differences left alone.
func writeMarkdownCallouts(b *strings.Builder, p Plan, level int) {
	writeMarkdownPolicies(b, p, level)
	archives, others := p.splitBlocked()
	if len(others) > 0 {
		writeMarkdownBlocked(b, "Changes flagsync refuses to make; "+p.ServiceName()+" will still differ from Git after this plan:", others, level)
	}
	if len(archives) > 0 {
		writeMarkdownBlocked(b, "Pruning refused by the mass-archive guard; these flags were removed from Git but are **not** archived:", archives, level)
	}
	if waiting := p.AwaitingApproval(); len(waiting) > 0 {
		writeMarkdownWaiting(b, p.ServiceName(), waiting, level)
	}
	if len(p.Notes) > 0 {
		writeMarkdownNotes(b, p, level)
	}
}

// writeMarkdownBlocked writes refused changes as a warning under title; a folded
// comment lists at most maxFoldedBlocked of them.
func writeMarkdownBlocked(b *strings.Builder, title string, blocked []Blocked, level int) {
	b.WriteString("> [!WARNING]\n> " + title + "\n")
	for i, x := range blocked {
		if level >= mdFlags && i == maxFoldedBlocked {
			fmt.Fprintf(b, "> - … and %d more\n", len(blocked)-i)
			break
		}
		fmt.Fprintf(b, "> - `%s`: %s\n", blockedTarget(x), mdEscape(x.Reason))
	}
	b.WriteString("\n")
}

// writeMarkdownWaiting writes the changes that wait for approval in the service as a
// note; a folded comment lists at most maxFoldedBlocked of them.
func writeMarkdownWaiting(b *strings.Builder, service string, waiting []Blocked, level int) {
	b.WriteString("> [!NOTE]\n> Awaiting approval in " + service + "; flagsync does not write or file these again while the request is open:\n")
	for i, x := range waiting {
		if level >= mdFlags && i == maxFoldedBlocked {
			fmt.Fprintf(b, "> - … and %d more\n", len(waiting)-i)
			break
		}
		fmt.Fprintf(b, "> - `%s`: %s\n", blockedTarget(x), mdEscape(x.Reason))
	}
	b.WriteString("\n")
}

// writeMarkdownNotes writes the differences left alone as a note under the summary: all
// of them in the full comment, at most maxFoldedBlocked once field details are folded,
// and only their number once the comment lists flags alone.
func writeMarkdownNotes(b *strings.Builder, p Plan, level int) {
	if level >= mdFlags {
		fmt.Fprintf(b, "> [!NOTE]\n> %d %s left alone (owned outside Git, or %s's own automation); `flagsync plan` lists them.\n\n",
			len(p.Notes), plural(len(p.Notes), "difference"), p.ServiceName())
		return
	}
	b.WriteString("> [!NOTE]\n> Differences flagsync leaves alone (owned outside Git, or " + p.ServiceName() + "'s own automation); nothing is written for them:\n")
	for i, n := range p.Notes {
		if level == mdChanges && i == maxFoldedBlocked {
			fmt.Fprintf(b, "> - … and %d more\n", len(p.Notes)-i)
			break
		}
		fmt.Fprintf(b, "> - `%s` <code>%s</code>: <code>%s</code> in Git, <code>%s</code> in %s: %s\n", n.Flag(), cell(n.Path),
			cell(truncate(compactJSON(n.Git), maxMarkdownValue)), cell(truncate(compactJSON(n.Live), maxMarkdownValue)), p.ServiceName(), mdEscape(n.Reason))
	}
	b.WriteString("\n")
}

func writeMarkdownChange(b *strings.Builder, c Change, held string, fields bool) {
	sym, _ := actionSymbol(c.Action)
	head := fmt.Sprintf("%s %d. %s", sym, c.Order, c.Action)
	if c.Environment != "" {
		head += " " + c.Environment
	}
	fmt.Fprintf(b, "**%s** `%s %s`%s%s<br>\n%s\n\n", mdEscape(head), c.Request.Method, c.Request.Path, afterText(c.After), mdEscape(held), mdEscape(c.Reason))
	if !fields || len(c.Fields) == 0 {
		return
	}
	b.WriteString("| | field | before | after |\n|---|---|---|---|\n")
	for _, f := range c.Fields {
		sym, _ := fieldSymbol(c.Action, f)
		before, after := mdValue(f.Before), mdValue(f.After)
		if c.Action == ActionCreate || f.Before == nil {
			before = ""
		}
		if f.After == nil && f.Before != nil {
			after = ""
		}
		fmt.Fprintf(b, "| %s | <code>%s</code> | %s | %s |\n", mdEscape(sym), cell(f.Path), before, after)
	}
	b.WriteString("\n")
}

// mdValue is a table cell holding v as compact JSON in <code>, cut to maxMarkdownValue.
func mdValue(v any) string {
	return "<code>" + cell(truncate(compactJSON(v), maxMarkdownValue)) + "</code>"
}

// cell escapes s for an HTML element inside a Markdown table cell.
func cell(s string) string { return cellEscaper.Replace(s) }

var cellEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "|", "&#124;")

// mdEscape keeps free text (reasons, summary) from being read as HTML or table syntax.
func mdEscape(s string) string {
	return mdEscaper.Replace(s)
}

// GitHub reads a single ~ as strikethrough, so it is escaped too.
var mdEscaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "|", "\\|", "~", "\\~")
