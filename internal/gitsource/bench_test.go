package gitsource

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/gittest"
)

const (
	benchFiles   = 10000
	benchCommits = 1000
)

func benchFlag(i, version int) string {
	return fmt.Sprintf("featureKey: flag_%05d\nname: Flag %d\ndescription: revision %d\nvariations:\n  - {key: off}\n  - {key: on}\nenvironments:\n  production:\n    featureEnabled: true\n    defaultVariationKey: off\n", i, i, version)
}

func benchPath(i int) string { return fmt.Sprintf("flags/team%02d/flag_%05d.yaml", i%100, i) }

// writeCommit writes one fast-import commit onto refs/heads/main that sets the files.
// Within one fast-import stream a commit follows the previous one by itself; onto is
// needed for the first commit of a stream when the branch exists already.
func writeCommit(w io.Writer, n int, onto bool, files map[string]string) {
	msg := fmt.Sprintf("commit %d", n)
	fmt.Fprintf(w, "commit refs/heads/main\ncommitter Bench <bench@flagsync.invalid> %d +0000\ndata %d\n%s\n", 1700000000+n, len(msg), msg)
	if onto {
		fmt.Fprintf(w, "from refs/heads/main^0\n")
	}
	for p, content := range files {
		fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", p, len(content), content)
	}
}

// benchRepo builds, with git fast-import, a repository of benchFiles flag files whose
// main branch has benchCommits commits, each after the first changing one file.
func benchRepo(b *testing.B) *gittest.Repo {
	b.Helper()
	start := time.Now()
	repo := gittest.NewRepo(b)
	var stream bytes.Buffer
	w := bufio.NewWriter(&stream)
	all := make(map[string]string, benchFiles)
	for i := 0; i < benchFiles; i++ {
		all[benchPath(i)] = benchFlag(i, 0)
	}
	writeCommit(w, 1, false, all)
	for n := 2; n <= benchCommits; n++ {
		i := (n * 7919) % benchFiles
		writeCommit(w, n, false, map[string]string{benchPath(i): benchFlag(i, n)})
	}
	w.Flush()
	repo.GitInput(b, &stream, "fast-import", "--quiet")
	b.Logf("fixture: %d files, %s commits, built in %s", benchFiles, repo.GitBare(b, "rev-list", "--count", "main"), time.Since(start).Round(time.Millisecond))
	return repo
}

// BenchmarkFetch measures Fetch over git's smart-HTTP server on a repository of 10,000
// flag files and 1,000 commits: a fresh clone (depth 1 and full) against an incremental
// fetch of a one-commit change into the cache. Run it with
//
//	go test -run '^$' -bench Fetch -benchtime 20x ./internal/gitsource
func BenchmarkFetch(b *testing.B) {
	repo := benchRepo(b)
	url := gittest.StartHTTP(b, repo, "bench", "bench")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	newSource := func(b *testing.B, depth int, cache string) *Source {
		s, err := New(Options{Repo: url, Depth: depth, CacheDir: cache, Auth: Auth{Username: "bench", Password: "bench"}, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	fetch := func(b *testing.B, s *Source) *Snapshot {
		snap, err := s.Fetch(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		return snap
	}
	version := benchCommits

	for _, depth := range []int{1, 0} {
		b.Run(fmt.Sprintf("clone/depth=%d", depth), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := newSource(b, depth, b.TempDir())
				b.StartTimer()
				fetch(b, s)
			}
		})
	}
	for _, depth := range []int{1, 0} {
		b.Run(fmt.Sprintf("incremental/depth=%d", depth), func(b *testing.B) {
			s := newSource(b, depth, b.TempDir())
			fetch(b, s)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				version++
				f := version % benchFiles
				var stream bytes.Buffer
				writeCommit(&stream, version, true, map[string]string{benchPath(f): benchFlag(f, version)})
				repo.GitInput(b, &stream, "fast-import", "--quiet")
				b.StartTimer()
				snap := fetch(b, s)
				b.StopTimer()
				if got, _ := snap.FS.(*treeFS).ReadFile(benchPath(f)); !bytes.Equal(got, []byte(benchFlag(f, version))) {
					b.Fatalf("fetch did not pick up commit %d", version)
				}
				b.StartTimer()
			}
		})
	}
	b.Run("up-to-date", func(b *testing.B) {
		s := newSource(b, 1, b.TempDir())
		fetch(b, s)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			fetch(b, s)
		}
	})
}
