package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestFromBuildReadsTheVCSStamp(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2025-02-03T04:05:06Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	got := fromBuild(bi, "", "", "")
	want := Info{Version: "devel", Commit: "0123456789abcdef0123456789abcdef01234567", CommitTime: "2025-02-03T04:05:06Z", Modified: true, GoVersion: "go1.99.1", Platform: got.Platform}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if !strings.Contains(got.Details(), "0123456789abcdef0123456789abcdef01234567 (modified)") || !strings.Contains(got.Details(), "2025-02-03T04:05:06Z") {
		t.Errorf("details:\n%s", got.Details())
	}
}

func TestLinkTimeValuesWin(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v0.9.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "aaaa"}}}
	got := fromBuild(bi, "v1.2.3", "bbbb", "2025-01-01T00:00:00Z")
	if got.Version != "v1.2.3" || got.Commit != "bbbb" || got.CommitTime != "2025-01-01T00:00:00Z" {
		t.Errorf("got %+v", got)
	}
	if got := fromBuild(bi, "", "", ""); got.Version != "v0.9.0" || got.Commit != "aaaa" {
		t.Errorf("module version and stamp: got %+v", got)
	}
	if got := fromBuild(nil, "", "", ""); got.Version != "devel" || got.Commit != "" || !strings.Contains(got.Details(), "commit:  unknown") {
		t.Errorf("no build info: got %+v", got)
	}
}

func TestCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "flagsync_build_info" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v", mfs)
	}
	m := mfs[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	i := Get()
	want := map[string]string{"version": i.Version, "revision": i.Commit, "modified": fmt.Sprint(i.Modified), "goversion": i.GoVersion}
	if fmt.Sprint(labels) != fmt.Sprint(want) || m.GetGauge().GetValue() != 1 {
		t.Errorf("labels %v value %v, want %v and 1", labels, m.GetGauge().GetValue(), want)
	}
}
