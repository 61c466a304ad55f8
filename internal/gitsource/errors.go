package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// ErrHistoryUnavailable is returned by ChangedFiles when a revision is not in the
// cache (a shallow fetch never downloaded it, or the cache was re-cloned since). The
// caller should fall back to a full reconcile.
var ErrHistoryUnavailable = errors.New("revision not in the fetched history")

// HostKeyError reports that an SSH server's host key could not be verified.
type HostKeyError struct {
	// Host is the host:port that was dialled.
	Host string
	// KnownHosts is the known_hosts file that was checked.
	KnownHosts string
	// Mismatch is true when known_hosts has keys for Host but none matches the server's
	// (a changed key, or a man in the middle); false when Host is not in the file at all.
	Mismatch bool
}

// Error says what failed and what to do about it.
func (e *HostKeyError) Error() string {
	if e.Mismatch {
		return fmt.Sprintf("ssh host key of %s does not match %s: the server's key changed or someone is in between; check the key with the server's owner before updating the file", e.Host, e.KnownHosts)
	}
	return fmt.Sprintf("ssh host %s is not in %s: add its key (e.g. ssh-keyscan -p PORT HOST >> %s, after checking the fingerprint) or point --known-hosts at a file that has it", e.Host, e.KnownHosts, e.KnownHosts)
}

// redactor removes secrets from error text. Credentials are kept out of URLs before
// go-git sees them, so this is a second line of defence against a library quoting a
// secret back in an error.
type redactor struct {
	secrets []string
}

func newRedactor(secrets ...string) *redactor {
	r := &redactor{}
	for _, s := range secrets {
		// Very short values would blank out ordinary words; they are not worth much as
		// secrets either, and are still never logged by this package.
		if len(s) >= 4 {
			r.secrets = append(r.secrets, s)
		}
	}
	return r
}

// err wraps err so that its message has every secret replaced by "***"; errors.Is and
// errors.As still see the original chain.
func (r *redactor) err(err error) error {
	if err == nil {
		return nil
	}
	msg := r.text(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

func (r *redactor) text(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "***")
	}
	return s
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// interruptedError reports a fetch that was cut short by the deadline, the network or
// a full disk: the cache is as it was before, and the same fetch may work later.
type interruptedError struct {
	err error
}

func (e *interruptedError) Error() string { return e.err.Error() }
func (e *interruptedError) Unwrap() error { return e.err }

// cutShort reports whether err, from a fetch, says that it was cut short rather than
// that something is wrong with the cache: a cancelled or expired context, a network
// error, the stream ending early (a dropped connection), a full disk. A fetch reads
// few files of the cache, and go-git ignores what goes wrong there (it only lists
// the commits it has), so an early end of stream is the server's.
func cutShort(err error) bool {
	return anyCause(err, func(e error) bool {
		var errno syscall.Errno
		switch {
		case errors.Is(e, context.Canceled), errors.Is(e, context.DeadlineExceeded), errors.Is(e, os.ErrDeadlineExceeded),
			errors.Is(e, io.ErrUnexpectedEOF), errors.Is(e, io.EOF):
			return true
		case errors.As(e, &errno):
			switch errno {
			case syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT, // the network
				syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG: // a full disk
				return true
			}
			return false
		}
		_, isNet := e.(net.Error) // *url.Error of an HTTP request, *net.OpError
		return isNet
	})
}

// missingObjects reports whether err says that a pack referred to objects that
// neither it nor the repository holds.
func missingObjects(err error) bool {
	return anyCause(err, func(e error) bool {
		return errors.Is(e, packfile.ErrReferenceDeltaNotFound) || errors.Is(e, plumbing.ErrObjectNotFound)
	})
}

// anyCause reports whether f holds for err or for an error it wraps, go-git's
// *plumbing.UnexpectedError and *plumbing.PermanentError included (they do not
// unwrap).
func anyCause(err error, f func(error) bool) bool {
	for err != nil {
		if f(err) {
			return true
		}
		switch e := err.(type) {
		case *plumbing.UnexpectedError:
			err = e.Err
		case *plumbing.PermanentError:
			err = e.Err
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				if anyCause(inner, f) {
					return true
				}
			}
			return false
		default:
			err = errors.Unwrap(err)
		}
	}
	return false
}
