package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestScenariosTiny runs every scenario end to end at 20 flags: each must exit 0, pass
// its own checks and print a row of figures.
func TestScenariosTiny(t *testing.T) {
	for _, tc := range []struct {
		args []string
		row  string // start of a Markdown row the output must have
	}{
		{[]string{"load", "-n", "20", "-runs", "1"}, "| 20 | "},
		{[]string{"plan", "-n", "20", "-runs", "1"}, "| 20 | 1% changed | 1 | "},
		{[]string{"calls", "-n", "20", "-latency", "1ms"}, "| 20 | steady state | 0 | 2 | 1 | 1 | 0 | "},
		{[]string{"import", "-n", "20", "-scale", "600"}, "| 20 | 22 | 1 | 1 | 20 | 0 | 0 | 0 | 0 | "},
		{[]string{"sync", "-n", "20", "-scale", "600"}, "| create 20 | 20 | "},
		{[]string{"daemon", "-n", "20", "-start", "20", "-latency", "1ms"}, "| steady-state drift check, 20 flags | – (the whole list: 1 page) | 1 | 1 (0 + 1 + 0) | "},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append(tc.args, "-format", "markdown"), &out, &errb)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
			}
			if strings.Contains(out.String(), "FAILED CHECK") {
				t.Errorf("failed checks:\n%s", out.String())
			}
			if !strings.Contains(out.String(), "\n"+tc.row) {
				t.Errorf("no row starting %q in:\n%s", tc.row, out.String())
			}
			if want := "`go run ./cmd/flagsync-bench " + strings.Join(tc.args, " ") + " -format markdown`"; !strings.Contains(out.String(), want) {
				t.Errorf("command line %s missing from:\n%s", want, out.String())
			}
		})
	}
}

// TestCallsFigures measures the four syncs at 20 flags and checks the figures the issue
// sets as targets, independently of the scenario's own checks.
func TestCallsFigures(t *testing.T) {
	o := callsOptions{pct: 1, latency: time.Millisecond, scale: 1, prScale: 600, concurrency: 4}
	rows, err := callsForSize(context.Background(), 20, o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	steady, change := rows[0], rows[1]
	for _, r := range rows {
		for _, f := range []passFigures{r.list, r.perRes} {
			if f.tooMany != 0 || f.serverTooMany != 0 {
				t.Errorf("%s: %d 429s (sandbox: %d)", r.pass, f.tooMany, f.serverTooMany)
			}
			if !f.converged {
				t.Errorf("%s: did not converge", r.pass)
			}
		}
		if r.perRes.calls <= r.list.calls {
			t.Errorf("%s: per-resource %d calls, flagsync %d: want more per resource", r.pass, r.perRes.calls, r.list.calls)
		}
		if r.perRes.gets != 20 {
			t.Errorf("%s: per resource made %d gets, want 20", r.pass, r.perRes.gets)
		}
	}
	if l := steady.list; l.writes != 0 || l.serverWrites != 0 || l.calls != 2 || l.token != 1 || l.listPages != 1 {
		t.Errorf("steady state: %d calls (%d token, %d list pages), %d writes (sandbox: %d); want 1 token + 1 list page, no write",
			l.calls, l.token, l.listPages, l.writes, l.serverWrites)
	}
	if p := steady.perRes; p.writes != 0 || p.serverWrites != 0 {
		t.Errorf("per-resource steady state: %d writes (sandbox: %d), want 0", p.writes, p.serverWrites)
	}
	// editEvery(20, 1) changes one flag: one production patch.
	for name, f := range map[string]passFigures{"flagsync": change.list, "per resource": change.perRes} {
		if f.changes != 1 || f.writes != 1 || f.serverWrites != 1 {
			t.Errorf("%s, 1%% change: %d changes, %d writes (sandbox: %d), want 1", name, f.changes, f.writes, f.serverWrites)
		}
	}
	sec := &section{}
	for _, r := range rows {
		checkCalls(sec, r)
	}
	if len(sec.problems) > 0 {
		t.Errorf("checks failed on real figures: %q", sec.problems)
	}
}

// TestCheckCalls makes sure the scenario's checks catch what the issue forbids.
func TestCheckCalls(t *testing.T) {
	good := func() callsRow {
		return callsRow{n: 200, pass: "steady state", want: 0,
			list:   passFigures{calls: 3, clientCalls: 3, priced: 3, token: 1, listPages: 2, converged: true},
			perRes: passFigures{calls: 201, token: 1, gets: 200, converged: true}}
	}
	goodChange := func() callsRow {
		return callsRow{n: 200, pass: "1% change", want: 2,
			list:   passFigures{changes: 2, calls: 5, clientCalls: 5, priced: 5, token: 1, listPages: 2, writes: 2, serverWrites: 2, converged: true},
			perRes: passFigures{changes: 2, calls: 203, token: 1, gets: 200, writes: 2, serverWrites: 2, converged: true}}
	}
	for _, tc := range []struct {
		name  string
		row   callsRow
		fails bool
	}{
		{"steady state as wanted", good(), false},
		{"change as wanted", goodChange(), false},
		{"steady state sent a write", func() callsRow { r := good(); r.list.writes, r.list.serverWrites, r.list.calls = 1, 1, 4; return r }(), true},
		{"sandbox saw a write the client did not count", func() callsRow { r := good(); r.list.serverWrites = 1; return r }(), true},
		{"steady state read more than the list pages", func() callsRow { r := good(); r.list.calls = 4; return r }(), true},
		{"change wrote twice", func() callsRow { r := goodChange(); r.list.writes, r.list.serverWrites = 3, 3; return r }(), true},
		{"change wrote too little", func() callsRow { r := goodChange(); r.list.writes, r.list.serverWrites = 1, 1; return r }(), true},
		{"429 seen by flagsync", func() callsRow { r := good(); r.list.tooMany = 1; return r }(), true},
		{"429 logged by the sandbox", func() callsRow { r := good(); r.perRes.serverTooMany = 1; return r }(), true},
		{"per resource not dearer", func() callsRow { r := good(); r.perRes.calls = 3; return r }(), true},
		{"per resource skipped gets", func() callsRow { r := good(); r.perRes.gets = 199; return r }(), true},
		{"per resource wrote in steady state", func() callsRow { r := good(); r.perRes.writes, r.perRes.serverWrites = 1, 1; return r }(), true},
		{"not converged", func() callsRow { r := goodChange(); r.list.converged = false; return r }(), true},
		{"a confirming read", func() callsRow {
			r := goodChange()
			r.list.confirmReads, r.list.calls, r.list.clientCalls, r.list.priced = 1, 6, 6, 6
			return r
		}(), true},
		{"the plan priced otherwise", func() callsRow { r := goodChange(); r.list.priced = 4; return r }(), true},
		{"the client counted otherwise", func() callsRow { r := good(); r.list.clientCalls = 2; return r }(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := &section{}
			checkCalls(sec, tc.row)
			if got := len(sec.problems) > 0; got != tc.fails {
				t.Errorf("problems %q, want failure: %t", sec.problems, tc.fails)
			}
		})
	}
}

func TestCheckImport(t *testing.T) {
	good := passFigures{calls: 22, priced: 22, token: 1, listPages: 1, writes: 20, serverWrites: 20, converged: true}
	for _, tc := range []struct {
		name  string
		edit  func(*passFigures)
		fails bool
	}{
		{"as wanted", func(*passFigures) {}, false},
		{"429 seen by the client", func(f *passFigures) { f.tooMany = 1 }, true},
		{"429 logged by the sandbox", func(f *passFigures) { f.serverTooMany = 1 }, true},
		{"a create missing", func(f *passFigures) { f.writes, f.serverWrites = 19, 19 }, true},
		{"not converged", func(f *passFigures) { f.converged = false }, true},
		{"the plan priced otherwise", func(f *passFigures) { f.priced = 21 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := good
			tc.edit(&f)
			sec := &section{}
			checkImport(sec, 20, f)
			if got := len(sec.problems) > 0; got != tc.fails {
				t.Errorf("problems %q, want failure: %t", sec.problems, tc.fails)
			}
		})
	}
}

// TestAllRuns checks that every command line "all" runs is valid.
func TestAllRuns(t *testing.T) {
	for _, r := range append(append([][]string{}, allRuns...), allQuickRuns...) {
		if m, _, code := prepare(r[0], r[1:], io.Discard); m == nil {
			t.Errorf("%q: exit %d", r, code)
		}
	}
}

func TestWriteDocument(t *testing.T) {
	tab := &table{header: []string{"flags", "calls"}}
	tab.add(20, 2)
	sections := []*section{
		{title: "First", command: "go run ./cmd/flagsync-bench load", tables: []*table{tab}, summary: [][2]string{{"load 20 files", "3 ms"}}},
		{title: "Second", command: "go run ./cmd/flagsync-bench calls", problems: []string{"steady state sent a write"}},
	}
	var b bytes.Buffer
	m := machine{cpu: "Test CPU", cores: 2, gomaxprocs: 2, goVersion: "go1.x", os: "linux/amd64", revision: "abc123", loadavg: "0.1, 0.2, 0.3"}
	writeDocument(&b, "go run ./cmd/flagsync-bench all --out BENCHMARKS.md", m, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), 90*time.Second, sections)
	doc := b.String()
	for _, want := range []string{
		"Generated by `go run ./cmd/flagsync-bench all --out BENCHMARKS.md` on 2026-01-02 03:04 UTC; the run took 1 min 30 s.",
		"| CPU | Test CPU |", "| cores | 2 |", "| GOMAXPROCS | 2 |", "| Go | go1.x |", "| OS | linux/amd64 |", "| flagsync revision | abc123 |",
		"## Summary\n\n| measured | figure |\n|---|---|\n| load 20 files | 3 ms |\n", "## How to read this", "## First\n\n`go run ./cmd/flagsync-bench load`", "| flags | calls |\n|---|---|\n| 20 | 2 |",
		"**1 checks FAILED", "**FAILED CHECK:** steady state sent a write",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("document lacks %q:\n%s", want, doc)
		}
	}
}

func TestClockNeverGoesBack(t *testing.T) {
	c := newClock(1000)
	t1 := c.Now()
	c.SetScale(1)
	t2 := c.Now()
	if t2.Before(t1) {
		t.Errorf("SetScale moved the clock back from %s to %s", t1, t2)
	}
	c.Advance(time.Hour)
	if t3 := c.Now(); t3.Sub(t2) < time.Hour {
		t.Errorf("Advance(1h) moved the clock by %s", t3.Sub(t2))
	}
	if got := c.real(10 * time.Second); got != 10*time.Second {
		t.Errorf("real(10s) at scale 1 = %s", got)
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Microsecond:               "1.5 ms",
		250 * time.Millisecond:                "250 ms",
		12340 * time.Millisecond:              "12.3 s",
		4*time.Minute + 10*time.Second:        "4 min 10 s",
		10*time.Hour + 3*time.Minute + 5e9:    "10 h 3 min",
		time.Hour + 59*time.Minute + 59*1e9:   "2 h 0 min",
		59*time.Minute + 59*time.Second + 6e8: "1 h 0 min",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%s) = %q, want %q", d, got, want)
		}
	}
	if got := count(10000); got != "10,000" {
		t.Errorf("count(10000) = %q", got)
	}
}
