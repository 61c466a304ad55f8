package kdoctor

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/logtest"
)

// tokenSpy is a transport that remembers every bearer token sent, so that a test can
// look for them in the output.
type tokenSpy struct {
	mu     sync.Mutex
	tokens map[string]bool
}

func (s *tokenSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		s.mu.Lock()
		s.tokens[tok] = true
		s.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestSecretsNeverPrinted runs doctor with a canary client secret against an API that
// echoes the caller's token and the secret in an error message: neither the secret nor
// any token appears in the text report, the JSON report or the logs. A second run with
// a wrong canary secret checks the failure path.
func TestSecretsNeverPrinted(t *testing.T) {
	const canary = "canary-s3cret-7f3a9c1e5b"
	for _, tc := range []struct {
		name       string
		sandboxSec string
		wantOK     bool
	}{
		{"right secret, echoing API", canary, true},
		{"wrong secret", "another-secret-value", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, ksandbox.Options{ClientID: "doctor-ci", ClientSecret: tc.sandboxSec}, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/feature-flags/search" {
						answer(w, http.StatusBadRequest, `{"message":"request by `+r.Header.Get("Authorization")+` for client_secret=`+canary+` refused","status":400}`)
						return
					}
					next.ServeHTTP(w, r)
				})
			})
			h.seed()
			spy := &tokenSpy{tokens: map[string]bool{}}
			var logs logtest.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			opts := h.options()
			opts.API.ClientID, opts.API.ClientSecret = "doctor-ci", canary
			opts.API.HTTPClient = &http.Client{Transport: spy}
			opts.API.Logger = logger
			opts.Logger = logger
			rep := h.run(context.Background(), opts)
			if rep.OK != tc.wantOK {
				t.Fatalf("OK = %t, want %t:\n%s", rep.OK, tc.wantOK, describe(rep))
			}
			var text, js bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			if tc.wantOK {
				if len(spy.tokens) < 2 {
					t.Fatalf("%d tokens seen, want the two doctor asks for", len(spy.tokens))
				}
				if r := rep.Row(RowSearchSort); !strings.Contains(r.Observed, "[REDACTED]") {
					t.Errorf("the echoing error did not reach the report, so the test proves nothing: %q", r.Observed)
				}
			} else if r := rep.Row(RowToken); r.Holds == nil || *r.Holds || !strings.Contains(r.Advice, "KAMELEOON_CLIENT_SECRET") {
				t.Errorf("token row with a wrong secret: %+v", r)
			}
			secrets := []string{canary}
			for tok := range spy.tokens {
				secrets = append(secrets, tok)
			}
			for where, out := range map[string]string{"text report": text.String(), "JSON report": js.String(), "logs": logs.String()} {
				for _, s := range secrets {
					if strings.Contains(out, s) {
						t.Errorf("the %s holds a secret (%.6s…)", where, s)
					}
				}
			}
		})
	}
}
