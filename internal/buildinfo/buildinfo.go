package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at release build time, where the build has no VCS stamp (the container image is
// built with -buildvcs=false from a context without .git):
//
//	go build -ldflags "-X github.com/flagsync/flagsync/internal/buildinfo.version=v1.2.3
//	  -X github.com/flagsync/flagsync/internal/buildinfo.commit=$(git rev-parse HEAD)
//	  -X github.com/flagsync/flagsync/internal/buildinfo.commitTime=2025-01-02T03:04:05Z"
//
// A value set here wins over what the Go toolchain recorded.
var (
	version    string
	commit     string
	commitTime string
)

// Info is one build of flagsync.
type Info struct {
	// Version is the release (v1.2.3), the module version of `go install …@v1.2.3`, or
	// "devel" for a build from a work tree.
	Version string `json:"version"`
	// Commit is the full commit hash the binary was built from; "" when unknown.
	Commit string `json:"commit,omitempty"`
	// CommitTime is the commit's date, RFC 3339 in UTC; "" when unknown.
	CommitTime string `json:"commitTime,omitempty"`
	// Modified is true when the work tree had uncommitted changes at build time.
	Modified bool `json:"modified"`
	// GoVersion is the toolchain that built the binary ("go1.26.8").
	GoVersion string `json:"goVersion"`
	// Platform is the operating system and architecture ("linux/amd64").
	Platform string `json:"platform"`
}

// Get returns the running binary's build information: the -ldflags overrides where set,
// else what runtime/debug.ReadBuildInfo recorded (module version, vcs.revision, vcs.time,
// vcs.modified).
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return fromBuild(bi, version, commit, commitTime)
}

// fromBuild assembles an Info from the toolchain's record (nil when there is none) and
// the link-time overrides.
func fromBuild(bi *debug.BuildInfo, ver, rev, revTime string) Info {
	info := Info{Version: "devel", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				info.CommitTime = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if ver != "" {
		info.Version = ver
	}
	if rev != "" {
		info.Commit = rev
	}
	if revTime != "" {
		info.CommitTime = revTime
	}
	return info
}

// String is the one line `flagsync --version` prints first: "flagsync v1.2.3".
func (i Info) String() string { return "flagsync " + i.Version }

// Details are the lines after it: the commit, its date, whether the tree was modified,
// and the toolchain.
func (i Info) Details() string {
	var b strings.Builder
	commit := i.Commit
	if commit == "" {
		commit = "unknown"
	}
	if i.Modified {
		commit += " (modified)"
	}
	fmt.Fprintf(&b, "commit:  %s\n", commit)
	if i.CommitTime != "" {
		fmt.Fprintf(&b, "date:    %s\n", i.CommitTime)
	}
	fmt.Fprintf(&b, "go:      %s %s\n", i.GoVersion, i.Platform)
	return b.String()
}

// Collector returns the flagsync_build_info gauge: value 1, labelled with the version,
// the commit (revision), whether the tree was modified and the Go version, after the
// convention of Prometheus' own <name>_build_info.
func Collector() prometheus.Collector {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flagsync_build_info",
		Help: "The running build of flagsync (value 1): version, revision (commit), modified and goversion.",
		ConstLabels: prometheus.Labels{
			"version":   i.Version,
			"revision":  i.Commit,
			"modified":  fmt.Sprint(i.Modified),
			"goversion": i.GoVersion,
		},
	})
	g.Set(1)
	return g
}
