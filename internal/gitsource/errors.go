package gitsource

import (
	"errors"
	"fmt"
	"strings"
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
