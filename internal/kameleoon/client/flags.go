package kclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/api"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// flagsPath is the collection of feature flags: list (GET) and create (POST).
const flagsPath = "/feature-flags"

// RulePath is the path of one rollout rule, for updates by rule id. The vendor tutorial
// names the endpoint PATCH /feature-flags/rules/{ruleId} (its curl example says
// /rules/{id}); this client uses the former.
func RulePath(ruleID int64) string {
	return flagsPath + "/rules/" + strconv.FormatInt(ruleID, 10)
}

// ListFlags returns every flag of siteCode, read with the list endpoint (one call per
// page) and converted to the model. Flags of other sites are dropped even if the server
// returns them, since whether it filters by siteCode is not documented. Flags the list
// returns incomplete are read one by one (see ListFlagsRaw).
func (c *Client) ListFlags(ctx context.Context, siteCode string) ([]kmodel.Flag, error) {
	r, err := c.ReadSite(ctx, siteCode)
	return r.Flags, err
}

// ReadSite is ListFlags with what the read tells about the server's clock (SiteRead.Lead),
// for a later drift check that reads only what changed since (SearchModified).
func (c *Client) ReadSite(ctx context.Context, siteCode string) (SiteRead, error) {
	l, err := c.listRaw(ctx, siteCode)
	if err != nil {
		return SiteRead{}, err
	}
	flags, err := c.decodeListed(siteCode, l.items)
	if err != nil {
		return SiteRead{}, fmt.Errorf("list flags of site %s: %w", siteCode, err)
	}
	return SiteRead{Flags: flags, Lead: l.lead, HasLead: l.hasLead, Total: len(flags), Complete: true, Pages: l.pages}, nil
}

// decodeListed converts listed flags (read shape) to the model, with siteCode where a
// flag leaves it out.
func (c *Client) decodeListed(siteCode string, raws []json.RawMessage) ([]kmodel.Flag, error) {
	out := make([]kmodel.Flag, 0, len(raws))
	for _, raw := range raws {
		f, conflicts, err := decodeFlag(raw)
		if err != nil {
			return nil, err
		}
		if f.SiteCode == "" {
			f.SiteCode = siteCode
		}
		c.warnOrderConflicts(f.Ref(), conflicts)
		out = append(out, f)
	}
	return out, nil
}

// warnOrderConflicts says which environments list rules in an order their orderIndex
// contradicts (see decodeFlag): flagsync follows orderIndex, and its next patch of the
// environment writes both the same way.
func (c *Client) warnOrderConflicts(ref kmodel.Ref, envs []string) {
	for _, env := range envs {
		c.log.Warn("rules are listed in an order their orderIndex contradicts; flagsync reads them by orderIndex, and its next patch of the environment sends both the same way",
			"flag", ref.String(), "env", env)
	}
}

// ListFlagsRaw returns every flag of siteCode as the API sent it (read shape), in the
// server's order, each with the fields flagsync plans with.
//
// Pages are followed with page=1,2,… while the X-Pagination-Page-Count header says
// there are more; without the header, until a page is shorter than PerPage (or than the
// page size the server reports in X-Pagination-Per-Page, if it clamped PerPage). The
// API's largest page size is not documented: a server that clamps PerPage silently and
// sends neither header would end the listing early, so PerPage stays at 100 by default.
//
// The list asks for OptionalFields, or for DocumentedOptionalFields once the API has
// refused those (see withOptionalFields). A flag listed without environmentConfigurations
// or variations (or, when the list did not ask for them, without variables or
// secondaryGoalIds) is read again with the single-flag GET, one call each within the
// budget, and replaced by what the GET returns; a flag the GET returns incomplete too
// gives an *IncompleteReadError.
func (c *Client) ListFlagsRaw(ctx context.Context, siteCode string) ([]json.RawMessage, error) {
	l, err := c.listRaw(ctx, siteCode)
	return l.items, err
}

// listed is what one read of flags returned.
type listed struct {
	items   []json.RawMessage
	asked   []string      // the optionalFields the pages asked for
	lead    time.Duration // see SiteRead.Lead
	hasLead bool
	pages   int
}

// observe records that a flag modified at date was seen in a response that arrived at
// the client's time at.
func (l *listed) observe(date string, at time.Time) {
	d, ok := parseDate(date)
	if !ok {
		return
	}
	if lead := d.Sub(at); !l.hasLead || lead > l.lead {
		l.lead, l.hasLead = lead, true
	}
}

// listRaw reads every page of siteCode's flags and completes the flags the list left
// incomplete (see ListFlagsRaw).
func (c *Client) listRaw(ctx context.Context, siteCode string) (listed, error) {
	l, err := c.listPages(ctx, siteCode)
	if err != nil {
		return listed{}, err
	}
	if err := c.completeFlags(ctx, siteCode, l.items, l.asked); err != nil {
		return listed{}, fmt.Errorf("list flags of site %s: %w", siteCode, err)
	}
	return l, nil
}

// completeFlags replaces, in all, each flag that lacks fields flagsync plans with by
// what the single-flag GET returns (see ListFlagsRaw); asked are the optionalFields the
// read asked for.
func (c *Client) completeFlags(ctx context.Context, siteCode string, all []json.RawMessage, asked []string) error {
	var incomplete []int
	for i, raw := range all {
		missing, err := missingFields(raw, notAsked(asked))
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			incomplete = append(incomplete, i)
		}
	}
	if len(incomplete) == 0 {
		return nil
	}
	c.log.Info("the list left out fields flagsync plans with; reading those flags one by one",
		"site", siteCode, "flags", len(incomplete), "optional_fields", strings.Join(asked, ","))
	for _, i := range incomplete {
		var id kmodel.Ref
		if err := json.Unmarshal(all[i], &id); err != nil || id.FeatureKey == "" {
			return fmt.Errorf("a flag listed without its fields has no featureKey to read it by")
		}
		if id.SiteCode == "" {
			id.SiteCode = siteCode
		}
		raw, err := c.getFlagRaw(ctx, id.SiteCode, id.FeatureKey)
		if err != nil {
			var ie *IncompleteReadError
			if errors.As(err, &ie) {
				ie.Listed = true
			}
			return fmt.Errorf("get %s, which the list left incomplete: %w", id, err)
		}
		all[i] = raw
	}
	return nil
}

// listPages reads every page of siteCode's flags and returns them with the optionalFields
// the pages asked for.
func (c *Client) listPages(ctx context.Context, siteCode string) (listed, error) {
	perPage := c.cfg.PerPage
	var l listed
	var prevFirst json.RawMessage
	for page := 1; ; page++ {
		res, names, err := c.withOptionalFields(func(q url.Values) (*api.Response, error) {
			q.Set("siteCode", siteCode)
			q.Set("page", strconv.Itoa(page))
			q.Set("perPage", strconv.Itoa(perPage))
			return c.caller.Send(ctx, api.Call{Method: http.MethodGet, Path: flagsPath, Query: q, Resend: true})
		})
		if err != nil {
			return listed{}, fmt.Errorf("list flags of site %s, page %d: %w", siteCode, page, err)
		}
		at := c.now()
		l.pages++
		if l.asked != nil && !slices.Equal(l.asked, names) {
			// The client fell back while this listing was under way (another call was
			// refused): start again, so that every page asked for the same fields.
			return c.listPages(ctx, siteCode)
		}
		l.asked = names
		var items []json.RawMessage
		if err := json.Unmarshal(res.Body, &items); err != nil {
			return listed{}, fmt.Errorf("list flags of site %s, page %d: decode: %w", siteCode, page, err)
		}
		if len(items) > 0 && prevFirst != nil && bytes.Equal(items[0], prevFirst) {
			// A server that ignores `page` would otherwise be read forever.
			return listed{}, fmt.Errorf("list flags of site %s: page %d repeats page %d; the server does not page as expected", siteCode, page, page-1)
		}
		for _, it := range items {
			var id struct {
				SiteCode     string `json:"siteCode"`
				DateModified string `json:"dateModified"`
			}
			if err := json.Unmarshal(it, &id); err != nil {
				return listed{}, fmt.Errorf("list flags of site %s, page %d: decode: %w", siteCode, page, err)
			}
			if id.SiteCode == "" || id.SiteCode == siteCode {
				l.items = append(l.items, it)
				l.observe(id.DateModified, at)
			}
		}
		if lastPage(res.Header, page, len(items), perPage) {
			return l, nil
		}
		if len(items) > 0 {
			prevFirst = items[0]
		}
	}
}

// lastPage reports whether page, which held n items asked for perPage at a time, is the
// last: the page count header says so, or, without it, the page is short. A full page
// has perPage items, or fewer if the server says it clamped perPage.
func lastPage(h http.Header, page, n, perPage int) bool {
	full := perPage
	if used, err := strconv.Atoi(h.Get("X-Pagination-Per-Page")); err == nil && used > 0 && used < perPage {
		full = used
	}
	if count, err := strconv.Atoi(h.Get("X-Pagination-Page-Count")); err == nil {
		return page >= count || n == 0
	}
	return n != full
}

// GetFlag returns one flag with the fields flagsync plans with. A flag that does not
// exist gives an error for which IsNotFound is true; one that comes back without
// environmentConfigurations or variations, an *IncompleteReadError.
func (c *Client) GetFlag(ctx context.Context, siteCode, featureKey string) (kmodel.Flag, error) {
	raw, err := c.getFlagRaw(ctx, siteCode, featureKey)
	if err != nil {
		return kmodel.Flag{}, fmt.Errorf("get flag %s/%s: %w", siteCode, featureKey, err)
	}
	f, conflicts, err := decodeFlag(raw)
	if err != nil {
		return kmodel.Flag{}, fmt.Errorf("get flag %s/%s: %w", siteCode, featureKey, err)
	}
	c.warnOrderConflicts(kmodel.Ref{SiteCode: siteCode, FeatureKey: featureKey}, conflicts)
	return f, nil
}

// getFlagRaw reads one flag with the single-flag GET and checks that it is complete
// (environmentConfigurations and variations present and not empty): the GET is the
// last read the client has, so an incomplete one is an *IncompleteReadError.
func (c *Client) getFlagRaw(ctx context.Context, siteCode, featureKey string) (json.RawMessage, error) {
	body, asked, err := c.fetchFlag(ctx, siteCode, featureKey)
	if err != nil {
		return nil, err
	}
	missing, err := missingFields(body, false)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, &IncompleteReadError{SiteCode: siteCode, FeatureKey: featureKey, Missing: missing, OptionalFields: slices.Clone(asked)}
	}
	return body, nil
}

// fetchFlag sends the single-flag GET and returns the body as it came, with the
// optionalFields it asked for.
func (c *Client) fetchFlag(ctx context.Context, siteCode, featureKey string) (json.RawMessage, []string, error) {
	res, asked, err := c.withOptionalFields(func(q url.Values) (*api.Response, error) {
		return c.caller.Send(ctx, api.Call{Method: http.MethodGet, Path: FlagPath(siteCode, featureKey), Query: q, Resend: true})
	})
	if err != nil {
		return nil, asked, err
	}
	return res.Body, asked, nil
}

// Do sends req exactly (method, path and body, as a plan carries it) and returns the
// response body. GET, PUT, PATCH (a merge patch is idempotent) and DELETE are retried
// after any transient failure; other POSTs only after a refusal (429, 423) or a
// connection that never opened. A create (POST /feature-flags) whose outcome is unknown
// (timeout, lost response, 5xx) is checked with a GET of the flag before it is sent
// again, so a flag is never created twice: if the flag exists, its body is returned.
func (c *Client) Do(ctx context.Context, req api.Request) (json.RawMessage, error) {
	if req.Method == http.MethodPost && req.Path == flagsPath {
		return c.create(ctx, req)
	}
	res, err := c.caller.Send(ctx, api.Call{Method: req.Method, Path: req.Path, Body: requestBody(req), Resend: idempotent(req.Method)})
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

func requestBody(req api.Request) []byte {
	if len(req.Body) == 0 {
		return nil
	}
	return req.Body
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// create sends a create request, never twice for one flag: see Do.
func (c *Client) create(ctx context.Context, req api.Request) (json.RawMessage, error) {
	var id kmodel.Ref
	if err := json.Unmarshal(req.Body, &id); err != nil || id.SiteCode == "" || id.FeatureKey == "" {
		// Without the flag's identity a lost response cannot be checked: send it once.
		res, err := c.caller.Send(ctx, api.Call{Method: req.Method, Path: req.Path, Body: requestBody(req)})
		if err != nil {
			return nil, err
		}
		return res.Body, nil
	}
	start := c.now()
	for failures := 1; ; failures++ {
		res, err := c.caller.Send(ctx, api.Call{Method: req.Method, Path: req.Path, Body: requestBody(req)})
		if err == nil {
			return res.Body, nil
		}
		if !api.Ambiguous(err) || ctx.Err() != nil {
			return nil, err
		}
		// The create may have taken effect with its response lost: look before resending.
		got, _, gerr := c.fetchFlag(ctx, id.SiteCode, id.FeatureKey)
		if gerr == nil {
			c.log.Warn("create response lost, but the flag exists: the create took effect", "flag", id.String(), "error", err.Error())
			return got, nil
		}
		if !api.IsNotFound(gerr) {
			return nil, fmt.Errorf("%w (could not check whether the flag was created: %w)", err, gerr)
		}
		delay := c.caller.Backoff(failures)
		if c.caller.GiveUp(failures, start, delay) {
			return nil, err
		}
		c.log.Warn("create failed and the flag does not exist; retrying", "flag", id.String(), "retry_in_ms", delay.Milliseconds(), "error", err.Error())
		if serr := api.Sleep(ctx, delay); serr != nil {
			return nil, fmt.Errorf("%w (after %w)", serr, err)
		}
	}
}

// decodeResponse decodes a flag from a write's response; an empty body gives a zero flag.
func decodeResponse(raw json.RawMessage) (kmodel.Flag, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return kmodel.Flag{}, nil
	}
	return DecodeFlag(raw)
}

// CreateFlag creates f with its environments (see CreateFlagRequest) and returns the flag
// as the API created it. A flag that exists already gives an error for which IsConflict
// is true.
func (c *Client) CreateFlag(ctx context.Context, f *kmodel.Flag, envOrder []string) (kmodel.Flag, error) {
	return c.write(ctx, f.Ref().String(), CreateFlagRequest(f, envOrder))
}

// UpdateFlag sets the named flag-level fields (see FlagPatchFields) to their values in
// after, with a merge patch of the flag.
func (c *Client) UpdateFlag(ctx context.Context, after *kmodel.Flag, fields []string) (kmodel.Flag, error) {
	return c.write(ctx, after.Ref().String(), UpdateFlagRequest(after, fields))
}

// PatchEnvironment sets the named fields of one environment (see EnvironmentPatchFields)
// to their values in after, with a merge patch of the environment that also carries
// featureKey, the flag's name and the environment's integrations and rules (see
// PatchEnvironmentRequest).
func (c *Client) PatchEnvironment(ctx context.Context, siteCode, featureKey, name, env string, after kmodel.Environment, fields []string) (kmodel.Flag, error) {
	return c.write(ctx, siteCode+"/"+featureKey+"/"+env, PatchEnvironmentRequest(siteCode, featureKey, name, env, after, fields))
}

// Archive archives a flag (Kameleoon keeps it; it is never deleted).
func (c *Client) Archive(ctx context.Context, siteCode, featureKey string) (kmodel.Flag, error) {
	return c.write(ctx, siteCode+"/"+featureKey, ArchiveFlagRequest(siteCode, featureKey, true))
}

// UpdateRule merge-patches one rollout rule by id (e.g. its rollbackConditions) and
// returns the flag the rule belongs to. body is marshalled to JSON (a json.RawMessage is
// sent as is).
func (c *Client) UpdateRule(ctx context.Context, ruleID int64, body any) (kmodel.Flag, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return kmodel.Flag{}, fmt.Errorf("update rule %d: encode body: %w", ruleID, err)
	}
	return c.write(ctx, "rule "+strconv.FormatInt(ruleID, 10), api.Request{Method: http.MethodPatch, Path: RulePath(ruleID), Body: b})
}

// write sends a write request and decodes the flag it returns.
func (c *Client) write(ctx context.Context, what string, req api.Request) (kmodel.Flag, error) {
	raw, err := c.Do(ctx, req)
	if err != nil {
		return kmodel.Flag{}, fmt.Errorf("%s %s: %w", verb(req), what, err)
	}
	f, err := decodeResponse(raw)
	if err != nil {
		return kmodel.Flag{}, fmt.Errorf("%s %s: %w", verb(req), what, err)
	}
	return f, nil
}

func verb(req api.Request) string {
	if req.Method == http.MethodPost {
		return "create"
	}
	return "update"
}
