package kclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// searchPath is the flag search: POST with {filter, page, perPage, sort}.
const searchPath = flagsPath + "/search"

// TotalCountHeader is the header that says how many flags a list or search matches in
// all; the drift check compares it with the flags it knows to notice deletions.
const TotalCountHeader = "X-Pagination-Total-Count"

// SiteRead is one read of a site's flags (ReadSite: the whole list; SearchModified: the
// flags modified lately), with what a later drift check needs.
type SiteRead struct {
	Flags []kmodel.Flag
	// Lead is the largest dateModified − arrival over the flags read: a flag's
	// dateModified minus the client's time when the page that held it arrived. Dates
	// are the server's, truncated to the second, and never after the server's time when
	// it answered, so the server's clock at any later client time t is at least
	// t + Lead: a flag modified after t has a dateModified of at least t + Lead, less
	// the truncation. HasLead is false when no flag had a readable dateModified.
	Lead    time.Duration
	HasLead bool
	// Total is how many flags of the site the API has: the list's flags, or the
	// search's X-Pagination-Total-Count.
	Total int
	// Complete says Flags holds every flag the read was asked for: the whole site
	// (ReadSite), or every flag modified at or after the search's since.
	Complete bool
	Pages    int // calls to the list or search, not counting GETs of flags read incomplete
}

// SearchUnsupportedError says the account does not serve the search the drift check
// needs (sorted by dateModified, newest first, with the total count header). The client
// remembers it: SearchModified answers it again without calling the API, and the
// drift check reads the whole list instead.
type SearchUnsupportedError struct {
	Reason string
	Err    error // the API's refusal, when it refused
}

// Error says why the search cannot be used.
func (e *SearchUnsupportedError) Error() string {
	s := "POST " + searchPath + " sorted by dateModified cannot serve the drift check: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the API's refusal.
func (e *SearchUnsupportedError) Unwrap() error { return e.Err }

// searchSupport remembers, for the client's lifetime, that the search cannot serve the
// drift check.
type searchSupport struct {
	mu      sync.Mutex
	refused *SearchUnsupportedError
}

func (s *searchSupport) get() *SearchUnsupportedError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// refuse records e unless a refusal is recorded already, and reports whether it did.
func (s *searchSupport) refuse(e *SearchUnsupportedError) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused != nil {
		return false
	}
	s.refused = e
	return true
}

// searchRefusal reports whether err is the API refusing the search request itself (a
// 4xx other than 401, 403, 429 and 423, or 501): the endpoint, its body or its sort is
// not served. Other errors are the read's failure, as for a list.
func searchRefusal(err error) bool {
	var e *api.Error
	if !errors.As(err, &e) || e.Path == tokenPath {
		return false
	}
	switch e.Status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType,
		http.StatusUnprocessableEntity, http.StatusNotImplemented:
		return true
	}
	return false
}

// SearchModified reads the flags of siteCode modified at or after since, newest first,
// with POST /feature-flags/search sorted by dateModified DESC and filtered by siteCode,
// PerPage flags a page, reading at most maxPages pages: one call when fewer than a page
// of flags changed. It stops at the first page that reaches a flag modified before since
// (or at a short page); SiteRead.Complete is false when maxPages pages were read without
// getting there. SiteRead.Total is the search's X-Pagination-Total-Count, the site's
// flags.
//
// The search asks for the optionalFields the list asks for, and flags it returns
// incomplete are read one by one, as for the list. When the account does not serve the
// search as the drift check needs it — the API refuses it (a 4xx such as 400 or 404),
// answers out of dateModified order, leaves out the total count header or a flag's
// dateModified, or returns another site's flags — SearchModified returns a
// *SearchUnsupportedError, and returns it again without a call for the client's
// lifetime (logged once).
func (c *Client) SearchModified(ctx context.Context, siteCode string, since time.Time, maxPages int) (SiteRead, error) {
	if e := c.search.get(); e != nil {
		return SiteRead{}, e
	}
	out, err := c.searchPages(ctx, siteCode, since, max(maxPages, 1))
	var unsupported *SearchUnsupportedError
	if errors.As(err, &unsupported) {
		if c.search.refuse(unsupported) {
			c.log.Warn("the API's flag search cannot serve the one-call drift check; drift checks read the whole list",
				"site", siteCode, "reason", unsupported.Error())
		}
		return SiteRead{}, unsupported
	}
	if err != nil {
		return SiteRead{}, fmt.Errorf("search flags of site %s modified since %s: %w", siteCode, since.UTC().Format(time.RFC3339), err)
	}
	if err := c.completeFlags(ctx, siteCode, out.items, out.asked); err != nil {
		return SiteRead{}, fmt.Errorf("search flags of site %s: %w", siteCode, err)
	}
	flags, err := c.decodeListed(siteCode, out.items)
	if err != nil {
		return SiteRead{}, fmt.Errorf("search flags of site %s: %w", siteCode, err)
	}
	return SiteRead{Flags: flags, Lead: out.lead, HasLead: out.hasLead, Total: out.total, Complete: out.complete, Pages: out.pages}, nil
}

// searched is what searchPages read.
type searched struct {
	listed
	total    int
	complete bool
}

// searchBody is the search's body: the site's flags, newest dateModified first.
func searchBody(siteCode string, page, perPage int) []byte {
	b, _ := json.Marshal(map[string]any{
		"filter":  []any{map[string]any{"field": "siteCode", "operator": "EQUAL", "parameters": []string{siteCode}}},
		"page":    page,
		"perPage": perPage,
		"sort":    []any{map[string]any{"field": "dateModified", "direction": "DESC"}},
	})
	return b
}

func (c *Client) searchPages(ctx context.Context, siteCode string, since time.Time, maxPages int) (searched, error) {
	perPage := c.cfg.PerPage
	var out searched
	var prev time.Time
	for page := 1; page <= maxPages; page++ {
		res, names, err := c.withOptionalFields(func(q url.Values) (*api.Response, error) {
			return c.caller.Send(ctx, api.Call{Method: http.MethodPost, Path: searchPath, Query: q, Body: searchBody(siteCode, page, perPage), Resend: true})
		})
		if searchRefusal(err) {
			return searched{}, &SearchUnsupportedError{Reason: "the API refused it", Err: err}
		}
		if err != nil {
			return searched{}, fmt.Errorf("page %d: %w", page, err)
		}
		at := c.now()
		out.pages++
		out.asked = names
		total, err := strconv.Atoi(res.Header.Get(TotalCountHeader))
		if err != nil || total < 0 {
			return searched{}, &SearchUnsupportedError{Reason: "the answer has no " + TotalCountHeader + " header, so deletions would go unnoticed"}
		}
		out.total = total
		var items []json.RawMessage
		if err := json.Unmarshal(res.Body, &items); err != nil {
			return searched{}, &SearchUnsupportedError{Reason: "the answer is not a list of flags", Err: err}
		}
		for _, it := range items {
			var id struct {
				SiteCode     string `json:"siteCode"`
				FeatureKey   string `json:"featureKey"`
				DateModified string `json:"dateModified"`
			}
			if err := json.Unmarshal(it, &id); err != nil {
				return searched{}, &SearchUnsupportedError{Reason: "the answer is not a list of flags", Err: err}
			}
			d, ok := parseDate(id.DateModified)
			switch {
			case id.SiteCode != "" && id.SiteCode != siteCode:
				return searched{}, &SearchUnsupportedError{Reason: fmt.Sprintf("the siteCode filter was not applied (flag %s/%s came back)", id.SiteCode, id.FeatureKey)}
			case !ok:
				return searched{}, &SearchUnsupportedError{Reason: fmt.Sprintf("flag %s has no readable dateModified (%q)", id.FeatureKey, id.DateModified)}
			case !prev.IsZero() && d.After(prev):
				return searched{}, &SearchUnsupportedError{Reason: fmt.Sprintf("the answer is not sorted by dateModified, newest first (%s after %s)",
					id.DateModified, prev.UTC().Format(dateLayout))}
			}
			prev = d
			out.items = append(out.items, it)
			out.observe(id.DateModified, at)
		}
		if lastPage(res.Header, page, len(items), perPage) || (len(items) > 0 && prev.Before(since)) {
			out.complete = true
			return out, nil
		}
	}
	return out, nil
}

// dateLayout is how Kameleoon's tutorial writes dates: UTC to the second, no zone.
const dateLayout = "2006-01-02T15:04:05"

// parseDate reads a date of the API: RFC 3339 with a zone, or the tutorial's form
// without one, read as UTC (fractions of a second allowed in both).
func parseDate(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// DateModified returns a flag's dateModified (read shape), if it has a readable one.
func DateModified(raw json.RawMessage) (time.Time, bool) {
	var d struct {
		DateModified string `json:"dateModified"`
	}
	if json.Unmarshal(raw, &d) != nil {
		return time.Time{}, false
	}
	return parseDate(d.DateModified)
}

// Vouches returns the flag a write's answer shows, when the answer vouches for the whole
// flag: a flag in read shape with its environmentConfigurations and variations (not
// empty), variables and secondaryGoalIds, as Kameleoon's create and patch answers carry
// them (the tutorial's, and the reference pages'). Such an answer is the flag's state
// once the write was applied, so no read is needed to confirm it. ok is false for an
// empty or unparsable answer, or one without those fields: only a read confirms that
// write. modified is the flag's dateModified (zero when unreadable).
func Vouches(raw json.RawMessage) (f kmodel.Flag, modified time.Time, ok bool) {
	missing, err := missingFields(raw, true)
	if err != nil || len(missing) > 0 {
		return kmodel.Flag{}, time.Time{}, false
	}
	f, _, err = decodeFlag(raw)
	if err != nil || f.FeatureKey == "" {
		return kmodel.Flag{}, time.Time{}, false
	}
	modified, _ = DateModified(raw)
	return f, modified, true
}

// Confirmed is Vouches, and remembers an answer that does not vouch for its flag: the
// client's writes may then need a confirming read (see WritesConfirmThemselves).
func (c *Client) Confirmed(raw json.RawMessage) (f kmodel.Flag, modified time.Time, ok bool) {
	f, modified, ok = Vouches(raw)
	if !ok {
		c.acct.incompleteResponses.Store(true)
	}
	return f, modified, ok
}

// WritesConfirmThemselves reports whether every write answer the client has seen
// vouched for its flag (see Confirmed): a plan's price then counts no confirming read.
func (c *Client) WritesConfirmThemselves() bool { return !c.acct.incompleteResponses.Load() }
