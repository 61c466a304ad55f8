package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// table is a scenario's figures: a header row and one row per measurement, written as
// aligned text or as a Markdown table (for BENCHMARKS.md).
type table struct {
	title  string // optional caption, written above the table
	header []string
	rows   [][]string
}

func (t *table) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = fmt.Sprint(c)
	}
	t.rows = append(t.rows, row)
}

func (t *table) write(w io.Writer, format string) {
	if t.title != "" {
		if format == "markdown" {
			fmt.Fprintf(w, "**%s**\n\n", t.title)
		} else {
			fmt.Fprintln(w, t.title)
		}
	}
	if format == "markdown" {
		fmt.Fprintf(w, "| %s |\n", strings.Join(t.header, " | "))
		fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(t.header)))
		for _, r := range t.rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
		}
		return
	}
	widths := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range append([][]string{t.header}, t.rows...) {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i == 0 {
				b.WriteString(c + pad) // first column left-aligned, figures right-aligned
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
