package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/logtest"
)

// Canaries: neither may appear in a log line, an error or a printed value.
var (
	canaryKey    = []byte("canary-signing-key-0123456789abcdef")
	canarySecret = Secret("whsec_" + base64.StdEncoding.EncodeToString(canaryKey))
	canarySlack  = "T0CANARY/B0CANARY/slackcanarytoken9X2"
)

var testNow = time.Date(2026, 5, 4, 10, 30, 0, 0, time.UTC)

// received is one verified delivery.
type received struct {
	id, timestamp string
	body          []byte
}

// receiver is a Standard Webhooks endpoint that verifies every delivery with its own
// implementation of the spec (not the package's Sign) and answers with the statuses
// queued in answers (then 204).
type receiver struct {
	t       *testing.T
	key     []byte
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received // verified deliveries, in order
	answers []int
	hang    time.Duration
}

func newReceiver(t *testing.T, key []byte, answers ...int) *receiver {
	r := &receiver{t: t, key: key, answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Error(err)
		return
	}
	if err := verifyStandardWebhook(r.key, req.Header, body, testNow); err != nil {
		r.t.Errorf("delivery does not verify: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, received{req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), body})
	status := http.StatusNoContent
	if len(r.answers) > 0 {
		status, r.answers = r.answers[0], r.answers[1:]
	}
	hang := r.hang
	r.mu.Unlock()
	if hang > 0 {
		select {
		case <-req.Context().Done():
		case <-time.After(hang):
		}
		return
	}
	w.WriteHeader(status)
}

func (r *receiver) deliveries() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// verifyStandardWebhook checks a delivery as a receiver following the Standard
// Webhooks spec would: the signed content is "id.timestamp.body", the signature header
// is a space-separated list of "v1,<base64>", the timestamp is within 5 minutes.
func verifyStandardWebhook(key []byte, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("Webhook-Id"), h.Get("Webhook-Timestamp"), h.Get("Webhook-Signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	if strings.Contains(id, ".") {
		return errors.New("webhook-id contains a full stop")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %v", ts, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s off by %s", ts, d)
	}
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, id+"."+ts+".")
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no v1 signature matches")
}

type message struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      struct {
		Scope    string `json:"scope"`
		Revision string `json:"revision"`
		Summary  string `json:"summary"`
		PlanURL  string `json:"plan_url"`
	} `json:"data"`
}

func decode(t *testing.T, body []byte) message {
	t.Helper()
	var m message
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return m
}

func newNotifier(t *testing.T, logs io.Writer, cfg Config) *Notifier {
	t.Helper()
	cfg.Now = func() time.Time { return testNow }
	cfg.Backoff = time.Millisecond
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOnChangeOnly: a sequence of sync outcomes sends one message per change of state,
// each signed and verified by the receiver, and nothing for repeats and no-op ticks.
func TestOnChangeOnly(t *testing.T) {
	rcv := newReceiver(t, canaryKey)
	logs := &logtest.Buffer{}
	n := newNotifier(t, logs, Config{
		Sinks:   []Sink{&Webhook{URL: Secret(rcv.srv.URL + "/hooks/flagsync"), Secret: canarySecret}},
		PlanURL: "https://ci.example.com/plans/{scope}/{revision}",
	})
	const scope = "kameleoon/checkout"
	steps := []struct {
		name string
		o    Outcome
		want []Kind
	}{
		{"first tick, converged", Outcome{Revision: "r1", Summary: "no changes"}, nil},
		{"sync fails", Outcome{Revision: "r2", Summary: "apply: 429 Too Many Requests", Failed: true}, []Kind{SyncFailed}},
		{"retry fails again", Outcome{Revision: "r2", Summary: "apply: 429 Too Many Requests", Failed: true}, nil},
		{"retry fails a third time", Outcome{Revision: "r2", Summary: "apply: timeout", Failed: true}, nil},
		{"converges", Outcome{Revision: "r2", Summary: "3 changes applied"}, []Kind{Recovered}},
		{"no-op tick", Outcome{Revision: "r2", Summary: "no changes"}, nil},
		{"drift appears", Outcome{Revision: "r2", Summary: "drift: 2 flags", Drift: "d1"}, []Kind{DriftFound}},
		{"same drift again", Outcome{Revision: "r2", Summary: "drift: 2 flags", Drift: "d1"}, nil},
		{"other drift", Outcome{Revision: "r2", Summary: "drift: 3 flags", Drift: "d2"}, []Kind{DriftFound}},
		{"refused changes too", Outcome{Revision: "r3", Summary: "1 deletion refused", Drift: "d2", Refused: "x1"}, []Kind{RefusedChanges}},
		{"converged again", Outcome{Revision: "r3", Summary: "no changes"}, []Kind{Recovered}},
		{"no-op tick again", Outcome{Revision: "r3", Summary: "no changes"}, nil},
		{"the first drift returns", Outcome{Revision: "r3", Summary: "drift: 2 flags", Drift: "d1"}, []Kind{DriftFound}},
	}
	var want []Kind
	for _, st := range steps {
		st.o.Scope = scope
		before := len(rcv.deliveries())
		rep := n.Observe(context.Background(), st.o)
		if len(rep.Failures) != 0 {
			t.Fatalf("%s: failures %v", st.name, rep.Failures)
		}
		var kinds []Kind
		for _, ev := range rep.Events {
			kinds = append(kinds, ev.Kind)
		}
		if !reflect.DeepEqual(kinds, st.want) {
			t.Errorf("%s: events %v, want %v", st.name, kinds, st.want)
		}
		if got := len(rcv.deliveries()) - before; got != len(st.want) {
			t.Errorf("%s: %d messages received, want %d", st.name, got, len(st.want))
		}
		want = append(want, st.want...)
	}

	got := rcv.deliveries()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	ids := map[string]bool{}
	for i, d := range got {
		m := decode(t, d.body)
		if m.Type != string(want[i]) {
			t.Errorf("message %d: type %q, want %q", i, m.Type, want[i])
		}
		if m.Data.Scope != scope || m.Data.Revision == "" || m.Data.Summary == "" || !m.Timestamp.Equal(testNow) {
			t.Errorf("message %d: %+v", i, m)
		}
		if wantURL := "https://ci.example.com/plans/kameleoon%2Fcheckout/" + m.Data.Revision; m.Data.PlanURL != wantURL {
			t.Errorf("message %d: plan_url %q, want %q", i, m.Data.PlanURL, wantURL)
		}
		if ids[d.id] {
			t.Errorf("message %d reuses webhook-id %s", i, d.id)
		}
		ids[d.id] = true
	}
	if st := n.Stats(); st.Sent != int64(len(want)) || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	assertNoSecret(t, logs.String())
}

// TestScopesAreIndependent: one scope failing does not hide another's failure.
func TestScopesAreIndependent(t *testing.T) {
	rcv := newReceiver(t, canaryKey)
	n := newNotifier(t, io.Discard, Config{Sinks: []Sink{&Webhook{URL: Secret(rcv.srv.URL), Secret: canarySecret}}})
	for _, scope := range []string{"a", "b", "a", "b"} {
		n.Observe(context.Background(), Outcome{Scope: scope, Revision: "r", Summary: "boom", Failed: true})
	}
	if got := len(rcv.deliveries()); got != 2 {
		t.Errorf("%d messages for two failing scopes, want 2", got)
	}
}

// TestRetries: 5xx and 429 are retried with the same webhook-id (and a fresh
// signature); 4xx is final; a receiver that hangs is timed out. No failure escapes
// Observe as anything but a report.
func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		answers   []int
		hang      time.Duration
		wantTries int
		wantOK    bool
		wantCode  int
	}{
		{"500 then 502 then 200", []int{500, 502, 200}, 0, 3, true, 0},
		{"503 three times", []int{503, 503, 503}, 0, 3, false, 503},
		{"429 then 200", []int{429, 200}, 0, 2, true, 0},
		{"400 is not retried", []int{400}, 0, 1, false, 400},
		{"410 is not retried", []int{410}, 0, 1, false, 410},
		{"hangs every time", nil, 5 * time.Second, 3, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, canaryKey, tc.answers...)
			rcv.hang = tc.hang
			logs := &logtest.Buffer{}
			var observed []string
			n := newNotifier(t, logs, Config{
				Sinks:   []Sink{&Webhook{Name: "ops", URL: Secret(rcv.srv.URL), Secret: canarySecret}},
				Timeout: 100 * time.Millisecond,
				Observe: func(sink string, k Kind, ok bool) { observed = append(observed, fmt.Sprintf("%s/%s/%t", sink, k, ok)) },
			})
			rep := n.Observe(context.Background(), Outcome{Revision: "r9", Summary: "boom", Failed: true})
			got := rcv.deliveries()
			if len(got) != tc.wantTries {
				t.Fatalf("%d attempts, want %d", len(got), tc.wantTries)
			}
			for _, d := range got[1:] {
				if d.id != got[0].id {
					t.Errorf("a retry changed webhook-id: %s, then %s", got[0].id, d.id)
				}
			}
			if want := []string{"ops/sync_failed/" + strconv.FormatBool(tc.wantOK)}; !reflect.DeepEqual(observed, want) {
				t.Errorf("observed %v, want %v", observed, want)
			}
			if tc.wantOK {
				if len(rep.Failures) != 0 {
					t.Errorf("failures %v", rep.Failures)
				}
				return
			}
			if len(rep.Failures) != 1 {
				t.Fatalf("failures %v, want one", rep.Failures)
			}
			f := rep.Failures[0]
			if f.Sink != "ops" || f.Kind != SyncFailed || f.Attempts != tc.wantTries || f.Status != tc.wantCode {
				t.Errorf("failure %+v", f)
			}
			if tc.hang > 0 && !errors.Is(f, context.DeadlineExceeded) {
				t.Errorf("a hanging receiver: %v, want a deadline error", f)
			}
			if n.Stats().Failed != 1 {
				t.Errorf("stats %+v", n.Stats())
			}
			assertNoSecret(t, logs.String(), f.Error())
			// The state moved on: the next failed retry sends nothing.
			if rep := n.Observe(context.Background(), Outcome{Revision: "r9", Summary: "boom", Failed: true}); len(rep.Events) != 0 {
				t.Errorf("a repeated failure after a failed delivery sent %v", rep.Events)
			}
		})
	}
}

// slackReceiver records Slack incoming-webhook posts at the secret path.
type slackReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	status int
}

func newSlackReceiver(t *testing.T) *slackReceiver {
	s := &slackReceiver{status: http.StatusOK}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/services/"+canarySlack || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "no_service", http.StatusNotFound)
			return
		}
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, m)
		status := s.status
		s.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// TestSlackAndPerSinkEvents: Slack gets text and blocks, only for the kinds it takes;
// the webhook sink gets everything.
func TestSlackAndPerSinkEvents(t *testing.T) {
	slack := newSlackReceiver(t)
	rcv := newReceiver(t, canaryKey)
	logs := &logtest.Buffer{}
	n := newNotifier(t, logs, Config{
		Sinks: []Sink{
			&Slack{URL: Secret(slack.srv.URL + "/services/" + canarySlack), Events: Events{SyncFailed, Recovered}},
			&Webhook{URL: Secret(rcv.srv.URL), Secret: canarySecret},
		},
		PlanURL: "https://ci.example.com/plans/{revision}",
	})
	ctx := context.Background()
	n.Observe(ctx, Outcome{Scope: "kameleoon/site", Revision: "0123456789abcdef0123", Summary: "apply <flag> & co: 500", Failed: true})
	n.Observe(ctx, Outcome{Scope: "kameleoon/site", Revision: "0123456789abcdef0123", Summary: "drift", Drift: "d"})
	n.Observe(ctx, Outcome{Scope: "kameleoon/site", Revision: "0123456789abcdef0123", Summary: "no changes"})

	if got := len(rcv.deliveries()); got != 3 {
		t.Errorf("webhook sink: %d messages, want 3 (failed, drift, recovered)", got)
	}
	slack.mu.Lock()
	bodies := slack.bodies
	slack.mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("slack: %d messages, want 2 (failed, recovered): %v", len(bodies), bodies)
	}
	text, _ := bodies[0]["text"].(string)
	for _, want := range []string{"sync failed", "kameleoon/site", "`0123456789ab`", "apply &lt;flag&gt; &amp; co: 500"} {
		if !strings.Contains(text, want) {
			t.Errorf("slack text %q lacks %q", text, want)
		}
	}
	blocks, _ := bodies[0]["blocks"].([]any)
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(blocks)
	raw := buf.String()
	if len(blocks) != 2 || !strings.Contains(string(raw), "<https://ci.example.com/plans/0123456789abcdef0123|view the plan>") {
		t.Errorf("slack blocks %s", raw)
	}
	if text, _ := bodies[1]["text"].(string); !strings.Contains(text, "recovered") {
		t.Errorf("second slack message %q", text)
	}
	assertNoSecret(t, logs.String())
}

// TestSecretsNeverShown: the signing secret and the Slack URL do not show in printed
// sinks or configs, in logs, or in the errors of failed deliveries (a Slack URL that
// answers 404, a receiver that is down).
func TestSecretsNeverShown(t *testing.T) {
	slack := newSlackReceiver(t)
	slack.status = http.StatusNotFound
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	sinks := []Sink{
		&Slack{URL: Secret(slack.srv.URL + "/services/" + canarySlack)},
		&Slack{Name: "down-slack", URL: Secret(downURL + "/services/" + canarySlack)},
		&Webhook{Name: "down-hook", URL: Secret(downURL + "/hook?token=" + canarySlack), Secret: canarySecret},
	}
	logs := &logtest.Buffer{}
	n := newNotifier(t, logs, Config{Sinks: sinks, Attempts: 2})
	rep := n.Observe(context.Background(), Outcome{Revision: "r", Summary: "boom", Failed: true})
	if len(rep.Failures) != 3 {
		t.Fatalf("failures %v, want 3", rep.Failures)
	}
	var shown []string
	for _, f := range rep.Failures {
		shown = append(shown, f.Error(), fmt.Sprintf("%+v", f))
	}
	cfg := Config{Sinks: sinks}
	for _, s := range sinks {
		shown = append(shown, fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s))
	}
	shown = append(shown, fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg))
	slog.New(slog.NewJSONHandler(logs, nil)).Info("config", "sinks", sinks, "secret", canarySecret, "slack", sinks[0], "hook", sinks[2])
	j, err := json.Marshal(sinks)
	if err != nil {
		t.Fatal(err)
	}
	shown = append(shown, string(j))
	assertNoSecret(t, append(shown, logs.String())...)
	if !strings.Contains(logs.String(), "notification not delivered") {
		t.Error("failed deliveries were not logged")
	}
}

func assertNoSecret(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		for _, c := range []string{string(canarySecret), canarySlack, base64.StdEncoding.EncodeToString(canaryKey), string(canaryKey)} {
			if strings.Contains(s, c) {
				t.Errorf("a secret shows: %q in\n%s", c, s)
			}
		}
	}
}

func TestConfig(t *testing.T) {
	short := Secret("whsec_" + base64.StdEncoding.EncodeToString([]byte("too-short")))
	tests := []struct {
		name string
		sink Sink
		want string
	}{
		{"no prefix", &Webhook{URL: Secret("https://x.example"), Secret: Secret(canaryKey)}, "whsec_"},
		{"not base64", &Webhook{URL: Secret("https://x.example"), Secret: "whsec_!!!"}, "not base64"},
		{"short key", &Webhook{URL: Secret("https://x.example"), Secret: short}, "at least 24"},
		{"no URL", &Webhook{Secret: canarySecret}, "URL is required"},
		{"ftp URL", &Webhook{URL: Secret("ftp://x.example"), Secret: canarySecret}, "http"},
		{"unknown event", &Slack{URL: "https://hooks.example/services/x", Events: Events{"sync_finished"}}, "sync_finished"},
		{"slack without URL", &Slack{}, "URL is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Sinks: []Sink{tc.sink}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
			assertNoSecret(t, err.Error())
		})
	}
	if _, err := New(Config{Sinks: []Sink{&Slack{URL: "https://hooks.example/services/x"}}, PlanURL: "not a url {revision}"}); err == nil {
		t.Error("a plan URL template that is not a URL was accepted")
	}
	if _, err := New(Config{}); err != nil {
		t.Errorf("no sinks: %v", err)
	}
}
