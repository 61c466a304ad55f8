//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package leader

import (
	"errors"
	"os"
)

// tryLock is not available here: flock(2) is missing.
func tryLock(path string) (*os.File, error) {
	return nil, &LockError{Op: "lock", Path: path, Err: errors.New("lock files need flock(2), which this system lacks")}
}
