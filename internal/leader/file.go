package leader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// FileConfig configures a lock-file election (--leader-lock PATH).
type FileConfig struct {
	// Path is the lock file on a volume every replica mounts. It is created when
	// missing; its directory must exist. Never delete it while replicas run.
	Path string
	// Identity is this replica's identity. Default NewIdentity().
	Identity string
	// Timings: RetryPeriod is both the heartbeat and the followers' poll interval;
	// RenewDeadline bounds writing without a successful heartbeat; LeaseDuration is
	// the takeover bound and must be at least RenewDeadline + 2 × RetryPeriod.
	Timings
	// Logger receives the election's log lines. Default: discard.
	Logger *slog.Logger
	// Now is the clock that judges Writing. Default time.Now.
	Now func() time.Time
}

// FileElector elects the holder of an exclusive flock(2) on a lock file. The kernel
// releases the lock when the holder's process dies, however it dies, so a follower
// polling every RetryPeriod takes over; the holder writes its identity and a heartbeat
// into the file so followers can name it.
//
// A follower that takes the lock from a holder that did not release it (a crash) waits
// until RenewDeadline + RetryPeriod after it last saw that holder's heartbeat change
// before it starts leading: by then the old holder has stopped writing even if it is
// alive but cut off from the volume.
type FileElector struct {
	*state
	path   string
	timing Timings
	// Follower bookkeeping, used only by Run's goroutine.
	seen   fileRecord // the last record read while following
	seenAt time.Time  // when seen last changed (local clock)
}

// fileRecord is the content of the lock file.
type fileRecord struct {
	Holder    string    `json:"holder"` // "" once released
	PID       int       `json:"pid,omitempty"`
	Host      string    `json:"host,omitempty"`
	Acquired  time.Time `json:"acquired,omitzero"`
	Heartbeat time.Time `json:"heartbeat,omitzero"`
	Released  time.Time `json:"released,omitzero"`
}

// NewFile checks cfg and returns a lock-file Elector.
func NewFile(cfg FileConfig) (*FileElector, error) {
	if cfg.Path == "" {
		return nil, &ConfigError{Field: "Path", Reason: "a lock file path is required"}
	}
	t := cfg.Timings.withDefaults()
	if err := t.validate(); err != nil {
		return nil, err
	}
	if t.LeaseDuration < t.RenewDeadline+2*t.RetryPeriod {
		return nil, &ConfigError{Field: "LeaseDuration", Reason: fmt.Sprintf("%s: a lock file needs at least renew deadline + 2 × retry period (%s)", t.LeaseDuration, t.RenewDeadline+2*t.RetryPeriod)}
	}
	id := cfg.Identity
	if id == "" {
		id = NewIdentity()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("lock_file", cfg.Path)
	return &FileElector{state: newState(BackendFile, id, t.RenewDeadline, cfg.Now, log), path: cfg.Path, timing: t}, nil
}

// LockError is a lock file that cannot be opened, locked, read or written.
type LockError struct {
	Op   string // "open", "lock", "heartbeat", "release"
	Path string
	Err  error
}

func (e *LockError) Error() string { return fmt.Sprintf("%s lock file %s: %v", e.Op, e.Path, e.Err) }

// Unwrap returns the underlying error.
func (e *LockError) Unwrap() error { return e.Err }

// Run campaigns for the lock until ctx is cancelled. It fails at once only when the
// lock file's directory does not exist; later I/O errors are logged and retried.
func (e *FileElector) Run(ctx context.Context, cb Callbacks) error {
	if fi, err := os.Stat(filepath.Dir(e.path)); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return &LockError{Op: "open", Path: e.path, Err: fmt.Errorf("directory: %w", err)}
	}
	e.setCallbacks(cb)
	ticker := time.NewTicker(e.timing.RetryPeriod)
	defer ticker.Stop()
	for {
		f, err := tryLock(e.path)
		switch {
		case err != nil:
			e.log.Warn("lock file unavailable", "err", err.Error())
		case f != nil:
			if lost := e.hold(ctx, f); lost && ctx.Err() == nil {
				// The lock was lost, not released: give the others the first try.
				select {
				case <-ctx.Done():
				case <-time.After(e.timing.RenewDeadline + e.timing.RetryPeriod):
				}
			}
		default:
			e.follow()
		}
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// follow reads the holder's record and notes when it changed.
func (e *FileElector) follow() {
	rec, err := readRecord(e.path)
	if err != nil {
		return // a record being rewritten; the next poll reads it
	}
	if rec != e.seen {
		e.seen, e.seenAt = rec, time.Now()
	}
	e.observe(rec.Holder)
}

// hold leads while f's lock is held: it waits out a crashed holder's deadline, starts
// the term, heartbeats every RetryPeriod, and releases the lock when ctx is cancelled
// or a heartbeat fails. It reports whether the lock was lost rather than released.
func (e *FileElector) hold(ctx context.Context, f *os.File) (lost bool) {
	defer f.Close() // closing the file releases the flock

	// Who held the lock last: by the file when it holds a record, else (an empty or
	// unreadable file: it may have been replaced) by what was seen while following.
	prev, err := readRecordFrom(f)
	if err != nil || prev == (fileRecord{}) {
		prev = e.seen
	}
	startAt := time.Now()
	if prev.Holder != "" && prev.Holder != e.identity && prev.Released.IsZero() {
		seenAt := e.seenAt
		if prev != e.seen || seenAt.IsZero() {
			seenAt = startAt // never saw this holder's heartbeat: assume it is fresh
		}
		startAt = seenAt.Add(e.timing.RenewDeadline + e.timing.RetryPeriod)
		e.log.Info("took over the lock of a holder that did not release it; waiting for its writes to stop",
			"previous", prev.Holder, "wait_ms", time.Until(startAt).Milliseconds())
	}

	host, _ := os.Hostname()
	rec := fileRecord{Holder: e.identity, PID: os.Getpid(), Host: host}
	beat := func() error {
		now := e.now()
		if err := sameFile(f, e.path); err != nil {
			return err
		}
		rec.Heartbeat = now
		if rec.Acquired.IsZero() {
			rec.Acquired = now
		}
		if err := writeRecord(f, rec); err != nil {
			return err
		}
		e.renewed(now)
		return nil
	}
	if err := beat(); err != nil {
		e.log.Warn("lock file heartbeat failed", "err", (&LockError{Op: "heartbeat", Path: e.path, Err: err}).Error())
		return true
	}
	ticker := time.NewTicker(e.timing.RetryPeriod)
	defer ticker.Stop()
	for wait := time.Until(startAt); wait > 0; wait = time.Until(startAt) {
		select {
		case <-ctx.Done():
			e.release(f, rec)
			return false
		case <-ticker.C:
			if err := beat(); err != nil {
				e.log.Warn("lock file heartbeat failed", "err", (&LockError{Op: "heartbeat", Path: e.path, Err: err}).Error())
				return true
			}
		case <-time.After(wait):
		}
	}

	t := e.startTerm(ctx, rec.Heartbeat)
	if t == nil {
		return false
	}
	go e.watchdog(t, func() {})
	for {
		select {
		case <-ctx.Done():
			e.endTerm(t, "shutting down", true)
			e.waitTerm(t)
			e.release(f, rec)
			return false
		case <-t.ended:
			// The watchdog ended the term: this process stalled past its deadline.
			e.waitTerm(t)
			e.release(f, rec)
			return true
		case <-ticker.C:
			if err := beat(); err != nil {
				e.endTerm(t, (&LockError{Op: "heartbeat", Path: e.path, Err: err}).Error(), false)
				e.waitTerm(t)
				return true // the file is not ours any more: do not write a release into it
			}
		}
	}
}

// release marks the record released, so the next holder need not wait; the deferred
// Close then drops the lock.
func (e *FileElector) release(f *os.File, rec fileRecord) {
	rec.Holder, rec.Released = "", e.now()
	if err := sameFile(f, e.path); err != nil {
		return
	}
	if err := writeRecord(f, rec); err != nil {
		e.log.Warn("lock file release", "err", (&LockError{Op: "release", Path: e.path, Err: err}).Error())
	}
	e.observe("")
}

// maxRecord bounds what is read from a lock file.
const maxRecord = 64 << 10

func readRecord(path string) (fileRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileRecord{}, err
	}
	defer f.Close()
	return readRecordFrom(f)
}

// readRecordFrom parses the record at the start of f; an empty file is an empty record.
func readRecordFrom(f *os.File) (fileRecord, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, maxRecord))
	if err != nil {
		return fileRecord{}, err
	}
	var rec fileRecord
	if len(b) == 0 {
		return rec, nil
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return fileRecord{}, err
	}
	return rec, nil
}

func writeRecord(f *os.File, rec fileRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(b)))
}

// sameFile reports an error unless path still names the file f has open: a lock on a
// file that was deleted or replaced no longer excludes anyone.
func sameFile(f *os.File, path string) error {
	held, err := f.Stat()
	if err != nil {
		return err
	}
	named, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !os.SameFile(held, named) {
		return errors.New("the lock file was replaced")
	}
	return nil
}
