package kclient

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flagsync/flagsync/internal/api"
)

// EnvTokenCounts says whether token requests are charged to the client's rate budget
// (see TokenCounting); ConfigFromEnv and TokenCountingFromEnv read it.
const EnvTokenCounts = "KAMELEOON_TOKEN_COUNTS"

// TokenCounting says whether the client charges its token requests to the rate budget.
// Kameleoon documents 50 calls per 10 s and 1,000 per hour without saying whether
// POST /oauth/token counts (flagsync doctor's token-rate-counted row measures it where
// the API says how many calls are left). Charging a request the API does not count makes
// every sync that needs a token wait for a window it does not need: a daemon starting on
// 5,000 flags needs the token and 50 list pages, which fit one 10-second window only when
// the token is not charged.
type TokenCounting string

// The ways of counting token requests.
const (
	// TokenCountsNo: token requests take no budget slot (the default, as the sandbox
	// reads it).
	TokenCountsNo TokenCounting = "no"
	// TokenCountsYes: every token request takes a slot like a resource call (where
	// doctor found them counted).
	TokenCountsYes TokenCounting = "yes"
	// TokenCountsAuto: not charged until the API answers a call 429; from then on, for
	// the rest of the process, charged. A 429 says the account's budget is tighter than
	// flagsync's count of it, and counting the token is the cheap half of the safe side.
	TokenCountsAuto TokenCounting = "auto"
)

// ParseTokenCounting reads a TokenCounting: "auto", "yes", "no" (also true/false, 1/0),
// or "" for the default (no).
func ParseTokenCounting(s string) (TokenCounting, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "no", "false", "0":
		return TokenCountsNo, nil
	case "yes", "true", "1":
		return TokenCountsYes, nil
	case "auto":
		return TokenCountsAuto, nil
	}
	return "", fmt.Errorf("%s=%q: want auto, yes or no", EnvTokenCounts, s)
}

// TokenCountingFromEnv reads EnvTokenCounts through getenv.
func TokenCountingFromEnv(getenv func(string) string) (TokenCounting, error) {
	return ParseTokenCounting(getenv(EnvTokenCounts))
}

// Counts are the HTTP exchanges a client made, by kind; every attempt counts (retries,
// and answers 401 or 429), as the API's own log would.
type Counts struct {
	Token int64 // POST /oauth/token
	Read  int64 // GET, and POST /feature-flags/search
	Write int64 // every other call: creates, patches, deletes
}

// Sub returns the exchanges made between o and c (c taken later).
func (c Counts) Sub(o Counts) Counts {
	return Counts{Token: c.Token - o.Token, Read: c.Read - o.Read, Write: c.Write - o.Write}
}

// Total is every exchange counted.
func (c Counts) Total() int64 { return c.Token + c.Read + c.Write }

// accounting counts the client's exchanges and decides whether its token requests are
// charged.
type accounting struct {
	mode                TokenCounting
	charged             atomic.Bool // token requests are charged (yes, or auto after a 429)
	token, read, write  atomic.Int64
	incompleteResponses atomic.Bool // a write answered a flag its confirmation cannot use
}

func newAccounting(mode TokenCounting) *accounting {
	a := &accounting{mode: mode}
	a.charged.Store(mode == TokenCountsYes)
	return a
}

// observe counts ci; in auto mode a 429 turns charging on, which it reports once.
func (a *accounting) observe(ci api.CallInfo) (switched bool) {
	switch {
	case ci.Endpoint == tokenPath:
		a.token.Add(1)
	case ci.Method == http.MethodGet || ci.Endpoint == "/feature-flags/search":
		a.read.Add(1)
	default:
		a.write.Add(1)
	}
	return ci.Status == http.StatusTooManyRequests && a.mode == TokenCountsAuto && a.charged.CompareAndSwap(false, true)
}

// Counts returns the HTTP exchanges the client made so far, by kind.
func (c *Client) Counts() Counts {
	return Counts{Token: c.acct.token.Load(), Read: c.acct.read.Load(), Write: c.acct.write.Load()}
}

// TokenCharged reports whether the client's token requests take a slot of its budget now
// (see TokenCounting).
func (c *Client) TokenCharged() bool { return c.acct.charged.Load() }

// Now is the client's clock (Config.Now): the one its token expiry and the drift check's
// time arithmetic run on.
func (c *Client) Now() time.Time { return c.now() }
