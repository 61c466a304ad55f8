package main

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// machine describes where the figures were measured.
type machine struct {
	cpu        string // model name from /proc/cpuinfo
	cores      int
	gomaxprocs int
	goVersion  string
	os         string
	revision   string // flagsync's VCS revision when the binary was stamped with it
	loadavg    string // 1, 5 and 15 minute load averages when measured, from /proc/loadavg
}

func describeMachine() machine {
	m := machine{
		cpu:        "unknown",
		cores:      runtime.NumCPU(),
		gomaxprocs: runtime.GOMAXPROCS(0),
		goVersion:  runtime.Version(),
		os:         runtime.GOOS + "/" + runtime.GOARCH,
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if v := field(b, "model name", ':'); v != "" {
			m.cpu = v
		}
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		if v := strings.Trim(field(b, "PRETTY_NAME", '='), `"`); v != "" {
			m.os += ", " + v
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.os += ", kernel " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], ", ")
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				m.revision = s.Value
			}
		}
	}
	return m
}

// field returns the value of the first line "key<sep>value" of b.
func field(b []byte, key string, sep byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), string(sep))
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
