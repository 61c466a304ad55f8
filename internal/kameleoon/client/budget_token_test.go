package kclient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
)

// TestTokenCheckedAfterBudgetWait: a call that waits for its budget slot longer than
// its token lives must not send the expired token (and spend a slot on a 401): the
// token is checked again once the slot is granted. At Kameleoon's limits the wait for
// the hourly window can outlast a 2-hour token; here tokens live 1 s and the budget
// makes the second call wait about 1.5 s.
func TestTokenCheckedAfterBudgetWait(t *testing.T) {
	srv, c := sandboxClient(t, ksandbox.Options{TokenTTL: time.Second, RatePer10s: -1, RatePerHour: -1}, func(cfg *Config) {
		cfg.Budget = api.NewBudgetWindows(api.Window{Limit: 1, Period: 1500 * time.Millisecond})
	})
	seedFlag(t, srv, "k")
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := c.GetFlag(ctx, tutorialSite, "k"); err != nil {
			t.Fatal(err)
		}
	}
	for _, call := range srv.Calls() {
		if call.Status == http.StatusUnauthorized {
			t.Errorf("an expired token was sent after the budget wait: %s (calls: %q)", callLine(call), callLines(srv.Calls()))
		}
	}
	if n := countCalls(srv.Calls(), "POST", "/oauth/token"); n != 2 {
		t.Errorf("%d token requests, want 2 (one per call: the first expired during the wait); calls: %q", n, callLines(srv.Calls()))
	}
}

// TestTokenCharging: the token request takes a budget slot with TokenCountsYes, none
// with TokenCountsNo (the default), and with TokenCountsAuto none until the API answers
// a 429; the counts by kind follow the server's log either way.
func TestTokenCharging(t *testing.T) {
	for _, tt := range []struct {
		counts       TokenCounting
		fault        bool // the first resource call is answered 429
		wantCharged  bool // after the calls
		wantUsedHour int
	}{
		{"", false, false, 2},
		{TokenCountsNo, false, false, 2},
		{TokenCountsYes, false, true, 3},
		{TokenCountsAuto, false, false, 2},
		// the 429 turns charging on: the first token is free, then 429, GET, 401 (the token
		// was revoked), the renewed token (charged now) and GET take five slots.
		{TokenCountsAuto, true, true, 5},
	} {
		t.Run(string(tt.counts)+map[bool]string{true: "+429"}[tt.fault], func(t *testing.T) {
			budget := api.NewBudgetWindows(api.Window{Limit: 100, Period: time.Hour})
			srv, c := sandboxClient(t, ksandbox.Options{RatePer10s: -1, RatePerHour: -1}, func(cfg *Config) {
				cfg.Budget, cfg.TokenCounts, cfg.BackoffBase, cfg.BackoffMax = budget, tt.counts, time.Millisecond, time.Millisecond
			})
			seedFlag(t, srv, "k")
			if tt.fault {
				srv.InjectFault(ksandbox.Fault{Method: "GET", Status: http.StatusTooManyRequests, RetryAfter: "0"})
			}
			ctx := context.Background()
			if _, err := c.GetFlag(ctx, tutorialSite, "k"); err != nil {
				t.Fatal(err)
			}
			if tt.fault {
				srv.RevokeTokens() // the next call needs a new token, charged or not
			}
			if _, err := c.GetFlag(ctx, tutorialSite, "k"); err != nil {
				t.Fatal(err)
			}
			if c.TokenCharged() != tt.wantCharged {
				t.Errorf("TokenCharged() = %t, want %t", c.TokenCharged(), tt.wantCharged)
			}
			if used := budget.Remaining()[0].Used; used != tt.wantUsedHour {
				t.Errorf("the budget counts %d calls, want %d (server log: %q)", used, tt.wantUsedHour, callLines(srv.Calls()))
			}
			got := c.Counts()
			logged := Counts{}
			for _, call := range srv.Calls() {
				switch {
				case call.Path == "/oauth/token":
					logged.Token++
				case call.Method == "GET":
					logged.Read++
				default:
					logged.Write++
				}
			}
			if got != logged {
				t.Errorf("Counts() = %+v, the server logged %+v", got, logged)
			}
		})
	}
}

func TestParseTokenCounting(t *testing.T) {
	for in, want := range map[string]TokenCounting{"": TokenCountsNo, "no": TokenCountsNo, "YES": TokenCountsYes, "true": TokenCountsYes, " auto ": TokenCountsAuto} {
		if got, err := ParseTokenCounting(in); err != nil || got != want {
			t.Errorf("ParseTokenCounting(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseTokenCounting("sometimes"); err == nil || !strings.Contains(err.Error(), EnvTokenCounts) {
		t.Errorf("ParseTokenCounting(sometimes): err = %v, want one naming %s", err, EnvTokenCounts)
	}
	if _, err := ConfigFromEnv(func(k string) string {
		return map[string]string{EnvClientID: "id", EnvClientSecret: "s", EnvTokenCounts: "maybe"}[k]
	}); err == nil {
		t.Error("ConfigFromEnv accepted KAMELEOON_TOKEN_COUNTS=maybe")
	}
	cfg, err := ConfigFromEnv(func(k string) string {
		return map[string]string{EnvClientID: "id", EnvClientSecret: "s", EnvTokenCounts: "auto"}[k]
	})
	if err != nil || cfg.TokenCounts != TokenCountsAuto {
		t.Errorf("ConfigFromEnv: %+v, %v; want TokenCounts auto", cfg.TokenCounts, err)
	}
}
