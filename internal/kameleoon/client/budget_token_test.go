package kclient

import (
	"context"
	"net/http"
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
		cfg.Budget = api.NewBudgetWindows(api.Window{Limit: 2, Period: 1500 * time.Millisecond})
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
