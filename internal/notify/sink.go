package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sink is a destination for notifications: a *Webhook or a *Slack.
type Sink interface {
	// SinkName names the sink in logs, errors and metrics.
	SinkName() string
	// Wants reports whether the sink takes events of kind k.
	Wants(k Kind) bool
	// request builds the HTTP request of one delivery attempt of ev. id stays the same
	// across the attempts of one message; now is the attempt's time.
	request(ev Event, id string, now time.Time) (*http.Request, error)
	check() error
}

// Events is a set of kinds a sink takes; empty means all.
type Events []Kind

func (e Events) wants(k Kind) bool {
	if len(e) == 0 {
		return true
	}
	for _, x := range e {
		if x == k {
			return true
		}
	}
	return false
}

func (e Events) check() error {
	for _, k := range e {
		if !k.valid() {
			return fmt.Errorf("event %q: want one of sync_failed, drift_found, refused_changes, recovered", string(k))
		}
	}
	return nil
}

// Webhook posts a JSON message {type, timestamp, data} signed per the Standard Webhooks
// specification: headers webhook-id (the same on every retry of a message),
// webhook-timestamp (Unix seconds of the attempt) and webhook-signature
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" with the decoded secret as key.
type Webhook struct {
	Name string // default "webhook"
	// URL is the receiver. It may carry a token in its path or query, so it is a
	// Secret too: only its scheme and host are ever logged.
	URL    Secret
	Secret Secret // "whsec_" + base64 of at least 24 random bytes
	Events Events // kinds sent; empty: all
}

// minSecretBytes is the Standard Webhooks minimum for a symmetric key.
const minSecretBytes = 24

// SinkName names the sink.
func (w *Webhook) SinkName() string {
	if w.Name == "" {
		return "webhook"
	}
	return w.Name
}

// Wants reports whether the sink takes kind k.
func (w *Webhook) Wants(k Kind) bool { return w.Events.wants(k) }

// LogValue logs the sink without its secret and with its URL cut to scheme and host.
func (w *Webhook) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", w.SinkName()), slog.String("url", hostOf(w.URL.Reveal())), slog.Any("secret", w.Secret))
}

// String describes the sink without its secret.
func (w *Webhook) String() string {
	return fmt.Sprintf("notify.Webhook{Name:%q URL:%s/(redacted) Secret:%v Events:%v}", w.SinkName(), hostOf(w.URL.Reveal()), w.Secret, w.Events)
}

// GoString is String, so that %#v does not print the fields.
func (w *Webhook) GoString() string { return w.String() }

func (w *Webhook) check() error {
	if err := checkURL(w.URL.Reveal()); err != nil {
		return err
	}
	if _, err := signingKey(w.Secret); err != nil {
		return err
	}
	return w.Events.check()
}

// signingKey decodes a "whsec_" secret. Errors never include the secret.
func signingKey(s Secret) ([]byte, error) {
	rest, ok := strings.CutPrefix(s.Reveal(), "whsec_")
	if !ok {
		return nil, fmt.Errorf("signing secret: must be \"whsec_\" followed by base64 (generate one with: echo \"whsec_$(openssl rand -base64 32)\")")
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("signing secret: the part after \"whsec_\" is not base64")
	}
	if len(key) < minSecretBytes {
		return nil, fmt.Errorf("signing secret: %d bytes, want at least %d", len(key), minSecretBytes)
	}
	return key, nil
}

// webhookMessage is the Standard Webhooks payload.
type webhookMessage struct {
	Type      Kind      `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Event     `json:"data"`
}

func (w *Webhook) request(ev Event, id string, now time.Time) (*http.Request, error) {
	key, err := signingKey(w.Secret)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(webhookMessage{Type: ev.Kind, Timestamp: ev.Time.UTC(), Data: ev})
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, w.URL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %s", hostOf(w.URL.Reveal()))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+Sign(key, id, ts, body))
	return req, nil
}

// Sign returns the base64 HMAC-SHA256 of "id.timestamp.body" with key: the Standard
// Webhooks v1 signature, without its "v1," prefix.
func Sign(key []byte, id, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Slack posts to a Slack incoming webhook: {"text": …, "blocks": […]}.
type Slack struct {
	Name string // default "slack"
	// URL is the incoming webhook URL. It is itself the credential, so it is a Secret.
	URL    Secret
	Events Events // kinds sent; empty: all
}

// SinkName names the sink.
func (s *Slack) SinkName() string {
	if s.Name == "" {
		return "slack"
	}
	return s.Name
}

// Wants reports whether the sink takes kind k.
func (s *Slack) Wants(k Kind) bool { return s.Events.wants(k) }

// LogValue logs the sink without its URL.
func (s *Slack) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", s.SinkName()), slog.Any("url", s.URL))
}

// String describes the sink without its URL.
func (s *Slack) String() string {
	return fmt.Sprintf("notify.Slack{Name:%q URL:%v Events:%v}", s.SinkName(), s.URL, s.Events)
}

// GoString is String, so that %#v does not print the fields.
func (s *Slack) GoString() string { return s.String() }

func (s *Slack) check() error {
	if err := checkURL(s.URL.Reveal()); err != nil {
		return err
	}
	return s.Events.check()
}

// Slack message parts (Block Kit).
type (
	slackMessage struct {
		Text   string       `json:"text"`
		Blocks []slackBlock `json:"blocks"`
	}
	slackBlock struct {
		Type     string      `json:"type"`
		Text     *slackText  `json:"text,omitempty"`
		Elements []slackText `json:"elements,omitempty"`
	}
	slackText struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
)

var titles = map[Kind]string{
	SyncFailed:     ":x: flagsync: sync failed",
	DriftFound:     ":warning: flagsync: drift found",
	RefusedChanges: ":no_entry: flagsync: changes refused",
	Recovered:      ":white_check_mark: flagsync: recovered",
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func (s *Slack) request(ev Event, _ string, _ time.Time) (*http.Request, error) {
	title := titles[ev.Kind]
	if ev.Scope != "" {
		title += " in " + slackEscape(ev.Scope)
	}
	rev := ev.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	text := title
	if rev != "" {
		text += " at `" + slackEscape(rev) + "`"
	}
	text += ": " + slackEscape(ev.Summary)
	msg := slackMessage{
		Text: text,
		Blocks: []slackBlock{
			{Type: "section", Text: &slackText{Type: "mrkdwn", Text: "*" + title + "*\n" + slackEscape(ev.Summary)}},
		},
	}
	var ctx []slackText
	if ev.Revision != "" {
		ctx = append(ctx, slackText{Type: "mrkdwn", Text: "revision `" + slackEscape(rev) + "`"})
	}
	if ev.PlanURL != "" {
		ctx = append(ctx, slackText{Type: "mrkdwn", Text: "<" + slackEscape(ev.PlanURL) + "|view the plan>"})
	}
	if len(ctx) > 0 {
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "context", Elements: ctx})
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, s.URL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request for the Slack URL")
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func checkURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("a URL is required")
	}
	if !strings.HasPrefix(raw, "https://") && !strings.HasPrefix(raw, "http://") {
		return fmt.Errorf("URL %s: must be http:// or https://", hostOf(raw))
	}
	if hostOf(raw) == "(unparsable URL)" {
		return fmt.Errorf("URL: unparsable")
	}
	return nil
}

// newMessageID returns a Standard Webhooks message id: "msg_" and 26 random base32
// characters (no '.', which the signed content uses as its separator).
func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "msg_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
