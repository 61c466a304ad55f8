package leader

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Lock-file test timings: short, and valid (LeaseDuration ≥ RenewDeadline + 2 × RetryPeriod).
var testFileTimings = Timings{LeaseDuration: 2 * time.Second, RenewDeadline: 400 * time.Millisecond, RetryPeriod: 50 * time.Millisecond}

// helperEnv makes the test binary a lock-file replica (see TestMain): the value is the
// lock path; LEADER_HELPER_ID and LEADER_HELPER_LOG name the identity and the shared
// event log.
const helperEnv = "FLAGSYNC_LEADER_HELPER_LOCK"

// Timings of the replica processes: the takeover after a kill -9 takes at most
// 2 × RetryPeriod + RenewDeadline (1.4s), under the 5s lease duration.
var processTimings = Timings{LeaseDuration: 5 * time.Second, RenewDeadline: time.Second, RetryPeriod: 200 * time.Millisecond}

func TestMain(m *testing.M) {
	if lock := os.Getenv(helperEnv); lock != "" {
		os.Exit(replicaMain(lock, os.Getenv("LEADER_HELPER_ID"), os.Getenv("LEADER_HELPER_LOG")))
	}
	os.Exit(m.Run())
}

// replicaMain is one daemon-like replica: while it leads it "writes" every 10ms, each
// write a line "write ID UNIXNANO" appended to the shared log after Guard allowed it;
// terms begin with "lead" and, when they end gracefully, close with "unlead".
func replicaMain(lock, id, logPath string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer out.Close()
	event := func(kind string) {
		fmt.Fprintf(out, "%s %s %d\n", kind, id, time.Now().UnixNano())
	}
	e, err := NewFile(FileConfig{Path: lock, Identity: id, Timings: processTimings})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("ready")
	err = e.Run(ctx, Callbacks{
		OnStartedLeading: func(ctx context.Context) {
			event("lead")
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if e.Guard(ctx) == nil {
						event("write")
					}
				}
			}
		},
		OnStoppedLeading: func() { event("unlead") },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// proc is a replica process started by the test.
type proc struct {
	id   string
	cmd  *exec.Cmd
	done chan error
}

func startReplica(t *testing.T, id, lock, logPath string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+lock, "LEADER_HELPER_ID="+id, "LEADER_HELPER_LOG="+logPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{id: id, cmd: cmd, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // only the process this test started, by its id
			<-p.done
		}
	})
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("replica %s did not start", id)
	}
	return p
}

type event struct {
	kind, id string
	at       int64
}

func readEvents(t *testing.T, path string) []event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var evs []event
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		at, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			t.Fatalf("bad log line %q", line)
		}
		evs = append(evs, event{f[0], f[1], at})
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	return evs
}

// waitLead waits for a "lead" event by a replica other than those in not, and
// returns its identity.
func waitLead(t *testing.T, logPath string, within time.Duration, not ...string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		for _, ev := range readEvents(t, logPath) {
			if ev.kind == "lead" && !contains(not, ev.id) {
				return ev.id, time.Since(start)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no replica other than %v led within %s; log:\n%s", not, within, mustRead(logPath))
	return "", 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustRead(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// checkNoOverlap checks that the terms in the event log never overlap: a term runs
// from its "lead" to the last write or "unlead" of that replica before its next lead.
func checkNoOverlap(t *testing.T, evs []event) (terms int) {
	t.Helper()
	type span struct {
		id         string
		start, end int64
	}
	var spans []span
	open := map[string]int{} // id → index in spans of its current term
	for _, ev := range evs {
		switch ev.kind {
		case "lead":
			spans = append(spans, span{ev.id, ev.at, ev.at})
			open[ev.id] = len(spans) - 1
		case "write", "unlead":
			i, ok := open[ev.id]
			if !ok {
				t.Errorf("%s %s at %d outside any term", ev.kind, ev.id, ev.at)
				continue
			}
			spans[i].end = ev.at
			if ev.kind == "unlead" {
				delete(open, ev.id)
			}
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if prev, cur := spans[i-1], spans[i]; cur.start <= prev.end {
			t.Errorf("terms overlap: %s led [%d, %d], %s led from %d", prev.id, prev.start, prev.end, cur.id, cur.start)
		}
	}
	return len(spans)
}

// TestLockFileProcesses runs replicas as real processes on one lock file: exactly one
// leads; kill -9 of the leader hands over to the other within the lease time; a
// graceful stop hands over too; no two terms ever overlap.
func TestLockFileProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	lock, logPath := filepath.Join(dir, "flagsync.lock"), filepath.Join(dir, "events.log")
	procs := map[string]*proc{}
	for _, id := range []string{"replica-a", "replica-b"} {
		procs[id] = startReplica(t, id, lock, logPath)
	}
	first, _ := waitLead(t, logPath, 20*time.Second)
	second := "replica-a"
	if first == "replica-a" {
		second = "replica-b"
	}
	// Several polls later, still one leader, and it is writing.
	time.Sleep(5 * processTimings.RetryPeriod)
	evs := readEvents(t, logPath)
	for _, ev := range evs {
		if ev.id == second {
			t.Fatalf("both replicas led: %v", ev)
		}
	}
	if n := countKind(evs, "write", first); n == 0 {
		t.Fatal("the leader is not writing")
	}

	if err := procs[first].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-procs[first].done
	got, took := waitLead(t, logPath, 30*time.Second, first)
	if got != second {
		t.Fatalf("after kill -9 of %s, %s led, want %s", first, got, second)
	}
	t.Logf("takeover after kill -9: %s", took.Round(10*time.Millisecond))
	if took > processTimings.LeaseDuration {
		t.Errorf("takeover took %s, more than the lease duration %s", took, processTimings.LeaseDuration)
	}

	// A restarted replica follows; a graceful stop of the leader hands over at once.
	third := startReplica(t, "replica-c", lock, logPath)
	time.Sleep(5 * processTimings.RetryPeriod)
	if n := countKind(readEvents(t, logPath), "lead", "replica-c"); n != 0 {
		t.Fatal("a new replica led while another held the lock")
	}
	if err := procs[second].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-procs[second].done; err != nil {
		t.Errorf("%s after SIGTERM: %v", second, err)
	}
	if got, _ := waitLead(t, logPath, 30*time.Second, first, second); got != "replica-c" {
		t.Fatalf("after SIGTERM, %s led", got)
	}
	time.Sleep(3 * processTimings.RetryPeriod)
	if err := third.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-third.done; err != nil {
		t.Errorf("replica-c after SIGTERM: %v", err)
	}

	evs = readEvents(t, logPath)
	if n := checkNoOverlap(t, evs); n != 3 {
		t.Errorf("%d terms, want 3; log:\n%s", n, mustRead(logPath))
	}
	if countKind(evs, "unlead", second) != 1 || countKind(evs, "unlead", "replica-c") != 1 {
		t.Errorf("graceful stops did not end their terms; log:\n%s", mustRead(logPath))
	}
}

func countKind(evs []event, kind, id string) int {
	n := 0
	for _, ev := range evs {
		if ev.kind == kind && ev.id == id {
			n++
		}
	}
	return n
}

// fileReplica runs a FileElector in this process.
type fileReplica struct {
	e       *FileElector
	cancel  context.CancelFunc
	done    chan error
	leading chan string
	mu      sync.Mutex
	ctx     context.Context // the current term's
	stopped int
}

// runFile runs an elector; onStart, when set, is called first thing in each
// OnStartedLeading.
func runFile(t *testing.T, cfg FileConfig, leading chan string, onStart func()) *fileReplica {
	t.Helper()
	e, err := NewFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &fileReplica{e: e, cancel: cancel, done: make(chan error, 1), leading: leading}
	go func() {
		r.done <- e.Run(ctx, Callbacks{
			OnStartedLeading: func(ctx context.Context) {
				if onStart != nil {
					onStart()
				}
				r.mu.Lock()
				r.ctx = ctx
				r.mu.Unlock()
				leading <- cfg.Identity
				<-ctx.Done()
			},
			OnStoppedLeading: func() {
				r.mu.Lock()
				r.stopped++
				r.mu.Unlock()
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Errorf("%s: Run did not return", cfg.Identity)
		}
	})
	return r
}

func (r *fileReplica) termCtx() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ctx
}

// TestLockFileHandover: two electors in one process (flock excludes open files, not
// processes): one leads, the other follows and names it; cancelling the leader
// releases the lock and the other takes over without waiting.
func TestLockFileHandover(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "flagsync.lock")
	leading := make(chan string, 4)
	reps := map[string]*fileReplica{
		"a": runFile(t, FileConfig{Path: lock, Identity: "a", Timings: testFileTimings}, leading, nil),
		"b": runFile(t, FileConfig{Path: lock, Identity: "b", Timings: testFileTimings}, leading, nil),
	}
	first := waitLeader(t, leading, "at start")
	second := map[string]string{"a": "b", "b": "a"}[first]
	lead, follow := reps[first], reps[second]
	deadline := time.Now().Add(10 * time.Second)
	for follow.e.Leader() != first && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if follow.e.Leader() != first || follow.e.IsLeader() || follow.e.Writing() || !lead.e.Writing() {
		t.Fatalf("follower sees %q, leads %t; leader writing %t", follow.e.Leader(), follow.e.IsLeader(), lead.e.Writing())
	}
	if st := follow.e.Status(); st.Role != RoleFollower || st.Backend != BackendFile {
		t.Errorf("follower status %+v", st)
	}

	lead.cancel()
	if err := <-lead.done; err != nil {
		t.Fatal(err)
	}
	lead.done <- nil
	if got := waitLeader(t, leading, "after the leader was cancelled"); got != second {
		t.Fatalf("new leader %s", got)
	}
	rec, err := readRecord(lock)
	if err != nil || rec.Holder != second {
		t.Errorf("lock file record %+v (%v), want holder %s", rec, err, second)
	}
}

// TestLockFileReplaced: the lock file is replaced under a leader (someone deleted and
// recreated it). The leader's next heartbeat notices and it stops; the follower that
// takes the new file waits out the old leader's deadline, so at the moment it starts
// leading the old one has stopped writing and its term's context is cancelled.
func TestLockFileReplaced(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "flagsync.lock")
	leading := make(chan string, 4)
	a := runFile(t, FileConfig{Path: lock, Identity: "a", Timings: testFileTimings}, leading, nil)
	if got := waitLeader(t, leading, "at start"); got != "a" {
		t.Fatalf("leader %s", got)
	}
	// Checked the moment b starts leading.
	var (
		mu                   sync.Mutex
		aWriting, aCtxLive   bool
		aStopped, checkedAtB int
	)
	runFile(t, FileConfig{Path: lock, Identity: "b", Timings: testFileTimings}, leading, func() {
		mu.Lock()
		defer mu.Unlock()
		checkedAtB++
		aWriting = a.e.Writing()
		ctx := a.termCtx()
		aCtxLive = ctx != nil && ctx.Err() == nil
		a.mu.Lock()
		aStopped = a.stopped
		a.mu.Unlock()
	})
	time.Sleep(4 * testFileTimings.RetryPeriod) // b follows and sees a's heartbeats

	fresh := filepath.Join(dir, "fresh")
	if err := os.WriteFile(fresh, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fresh, lock); err != nil {
		t.Fatal(err)
	}
	if got := waitLeader(t, leading, "after the lock file was replaced"); got != "b" {
		t.Fatalf("new leader %s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if checkedAtB != 1 || aWriting || aCtxLive || aStopped != 1 {
		t.Errorf("when b started leading: a writing %t, a's term context live %t, a's OnStoppedLeading calls %d (checked %d times)",
			aWriting, aCtxLive, aStopped, checkedAtB)
	}
	if a.e.IsLeader() {
		t.Error("a still leads")
	}
}

// TestLockFileGuardIsClockBased: a leader whose heartbeat has not succeeded for the
// renew deadline (here: the clock jumps, as after a long pause) stops writing at once.
func TestLockFileGuardIsClockBased(t *testing.T) {
	clock := newFakeClock()
	lock := filepath.Join(t.TempDir(), "flagsync.lock")
	slow := Timings{LeaseDuration: 5 * time.Hour, RenewDeadline: 2 * time.Hour, RetryPeriod: time.Hour}
	leading := make(chan string, 1)
	r := runFile(t, FileConfig{Path: lock, Identity: "a", Timings: slow, Now: clock.Now}, leading, nil)
	waitLeader(t, leading, "at start")
	if !r.e.Writing() {
		t.Fatal("not writing after acquiring")
	}
	clock.Advance(2 * time.Hour)
	if r.e.Writing() {
		t.Fatal("still writing two hours (the renew deadline) after the last heartbeat")
	}
	var nl *NotLeaderError
	if err := r.e.Guard(context.Background()); !errors.As(err, &nl) || !nl.Expired {
		t.Errorf("Guard: %v, want an expired NotLeaderError", err)
	}
}

func TestLockFileConfig(t *testing.T) {
	var ce *ConfigError
	if _, err := NewFile(FileConfig{}); !errors.As(err, &ce) || ce.Field != "Path" {
		t.Errorf("no path: %v", err)
	}
	_, err := NewFile(FileConfig{Path: "/x", Timings: Timings{LeaseDuration: 11 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}})
	if !errors.As(err, &ce) || ce.Field != "LeaseDuration" {
		t.Errorf("lease shorter than deadline + 2 retries: %v", err)
	}
	e, err := NewFile(FileConfig{Path: filepath.Join(t.TempDir(), "missing-dir", "l")})
	if err != nil {
		t.Fatal(err)
	}
	var le *LockError
	if err := e.Run(context.Background(), Callbacks{}); !errors.As(err, &le) {
		t.Errorf("lock file in a missing directory: %v, want a LockError", err)
	}
}
