package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// maxErrorBody is how much of a response body an Error keeps.
const maxErrorBody = 2 << 10

// Error is a response from the API with a status that is not 2xx. Body and Message never
// hold the client secret or a token: they are redacted before the Error is built.
type Error struct {
	Status    int    // HTTP status code
	Method    string // request method
	Path      string // request path, without the query
	Retryable bool   // the failure is transient (429, 423, 5xx): the same call may succeed later
	Message   string // the server's message, read leniently from message, error_description or error
	Body      string // the raw body, truncated to 2 KiB
}

// Error renders the error as "METHOD /path: 400 Bad Request: message".
func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// IsNotFound reports whether err is (or wraps) an API response with status 404.
func IsNotFound(err error) bool { return HasStatus(err, http.StatusNotFound) }

// IsConflict reports whether err is (or wraps) an API response with status 409, which a
// create returns when the flag already exists.
func IsConflict(err error) bool { return HasStatus(err, http.StatusConflict) }

// HasStatus reports whether err is (or wraps) an API response with the given status.
func HasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// RetryableStatus reports whether a status means "try again later": the rate limit, a
// locked resource, or a server-side failure.
func RetryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusLocked || status >= 500
}

// NewError builds the Error for a response, with its message read by ErrorMessage; body
// must already be redacted.
func NewError(method, path string, status int, body []byte) *Error {
	return &Error{
		Status:    status,
		Method:    method,
		Path:      path,
		Retryable: RetryableStatus(status),
		Message:   ErrorMessage(body),
		Body:      TruncateErrorBody(string(body)),
	}
}

// TruncateErrorBody keeps the first 2 KiB of an error body for Error.Body, marking the
// cut.
func TruncateErrorBody(text string) string {
	if len(text) > maxErrorBody {
		text = text[:maxErrorBody] + "…(truncated)"
	}
	return text
}

// ErrorMessage reads a human message from an error body: `message`, RFC 6749's
// `error` and `error_description` (token endpoints), or an `errors` array. Anything else
// gives the body's first line, so that the error still says something. (Kameleoon's error
// bodies are not documented: third-party code reads `message`, and its token endpoint
// likely follows RFC 6749.)
func ErrorMessage(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		str := func(k string) string {
			s, _ := m[k].(string)
			return strings.TrimSpace(s)
		}
		switch msg, desc, code := str("message"), str("error_description"), str("error"); {
		case msg != "":
			return OneLine(msg)
		case desc != "" && code != "":
			return OneLine(code + ": " + desc)
		case desc != "":
			return OneLine(desc)
		case code != "":
			return OneLine(code)
		}
		if errs, ok := m["errors"].([]any); ok && len(errs) > 0 {
			b, _ := json.Marshal(errs)
			return OneLine(string(b))
		}
		return ""
	}
	return OneLine(string(body))
}

// OneLine keeps the first line of s, at most 300 bytes of it.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// redactedMark replaces a secret in bodies and messages.
const redactedMark = "[REDACTED]"

// secretFields match JSON members and form fields whose values are secrets whatever
// their value, and credentials after an auth scheme (long enough to be one, so that
// "a Bearer token is required" stays readable), so that a token the client has not seen
// yet is redacted too.
var secretFields = regexp.MustCompile(`(?i)("(?:access_token|refresh_token|client_secret|id_token)"\s*:\s*")[^"]*(")|((?:access_token|refresh_token|client_secret)=)[^&\s"]+|((?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{16,}`)

// Redact removes every known secret (values shorter than 4 bytes are ignored) and every
// secret-named field from b.
func Redact(b []byte, secrets ...string) []byte {
	s := string(b)
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, redactedMark)
		}
	}
	s = secretFields.ReplaceAllString(s, "${1}${3}${4}"+redactedMark+"${2}")
	return []byte(s)
}
