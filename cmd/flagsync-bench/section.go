package main

import (
	"fmt"
	"io"
	"strings"
)

// section is one scenario's results: what was measured, the figures and what they
// mean, written as text on stdout or as Markdown in BENCHMARKS.md.
type section struct {
	title    string
	command  string   // the command line that measures this section alone
	intro    []string // paragraphs before the tables
	tables   []*table
	notes    []string // paragraphs after the tables
	problems []string // failed checks of the figures; any makes the command exit 1

	// summary are the section's headline figures, for the summary table at the top of
	// BENCHMARKS.md.
	summary [][2]string // what was measured, the figure
}

// headline adds a row to the section's summary.
func (s *section) headline(what, figure string) {
	s.summary = append(s.summary, [2]string{what, figure})
}

// check records a problem unless ok.
func (s *section) check(ok bool, format string, args ...any) {
	if !ok {
		s.problems = append(s.problems, fmt.Sprintf(format, args...))
	}
}

func (s *section) write(w io.Writer, format string) {
	if format == "markdown" {
		s.writeMarkdown(w)
		return
	}
	fmt.Fprintf(w, "%s\n%s\n", s.title, strings.Repeat("=", len([]rune(s.title))))
	fmt.Fprintf(w, "$ %s\n\n", s.command)
	for _, p := range s.intro {
		fmt.Fprintln(w, p)
	}
	for _, t := range s.tables {
		fmt.Fprintln(w)
		t.write(w, "text")
	}
	if len(s.notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, p := range s.notes {
		fmt.Fprintln(w, p)
	}
	for _, p := range s.problems {
		fmt.Fprintf(w, "FAILED CHECK: %s\n", p)
	}
	fmt.Fprintln(w)
}

func (s *section) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "## %s\n\n", s.title)
	fmt.Fprintf(w, "`%s`\n\n", s.command)
	for _, p := range s.intro {
		fmt.Fprintf(w, "%s\n\n", p)
	}
	for _, t := range s.tables {
		t.write(w, "markdown")
		fmt.Fprintln(w)
	}
	for _, p := range s.notes {
		fmt.Fprintf(w, "%s\n\n", p)
	}
	for _, p := range s.problems {
		fmt.Fprintf(w, "**FAILED CHECK:** %s\n\n", p)
	}
}
