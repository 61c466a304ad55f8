package notify

import (
	"fmt"
	"log/slog"
	"net/url"
)

// Secret is a value that must never be printed or logged: a signing secret, or a Slack
// incoming-webhook URL (whoever has it can post to the channel). Every fmt verb, slog
// and encoding/json print it as "(redacted)".
type Secret string

const redactedText = "(redacted)"

// Format prints Secret as "(redacted)" whatever the verb, %#v included.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.redacted())) }

// LogValue logs the Secret redacted.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.redacted()) }

// MarshalText encodes the Secret redacted, for encoding/json and friends.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.redacted()), nil }

func (s Secret) redacted() string {
	if s == "" {
		return "(none)"
	}
	return redactedText
}

// Reveal returns the secret itself, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// hostOf names a URL by scheme and host only: its path and query may carry a token.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}
