//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package leader

import (
	"errors"
	"os"
	"syscall"
)

// tryLock opens path and takes an exclusive flock without blocking. It returns the
// locked file, (nil, nil) when another open file holds the lock, or an error.
func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, &LockError{Op: "open", Path: path, Err: err}
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, &LockError{Op: "lock", Path: path, Err: err}
	}
	var lockErr error
	if err := raw.Control(func(fd uintptr) {
		lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	}); err != nil {
		lockErr = err
	}
	if errors.Is(lockErr, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, nil
	}
	if lockErr != nil {
		f.Close()
		return nil, &LockError{Op: "lock", Path: path, Err: lockErr}
	}
	// The path may have been replaced between open and lock.
	if err := sameFile(f, path); err != nil {
		f.Close()
		return nil, nil
	}
	return f, nil
}
