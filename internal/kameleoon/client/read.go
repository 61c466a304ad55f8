package kclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/flagsync/flagsync/internal/api"
)

// This file holds how the client reads flags when the docs leave the read open: which
// optionalFields names the API accepts, and what to do with a flag the list sends
// without the fields flagsync plans with.
//
// Kameleoon's docs name only tags and description as optionalFields; flagsync also asks
// for variables, variations, secondaryGoalIds and environmentConfigurations. An account
// may accept those names, refuse them with a 400, or ignore them and leave the fields
// out. The client asks for all of them first; on a 400 it falls back, once and for its
// lifetime, to the documented names. A flag that then comes back without
// environmentConfigurations or variations (absent, or empty where Kameleoon always has
// at least one) is read again with the single-flag GET, and a flag that is still
// incomplete fails the read: flagsync never plans against a read it knows is incomplete.

// DocumentedOptionalFields are the optionalFields names Kameleoon's docs name; the client
// falls back to them when the API refuses OptionalFields.
var DocumentedOptionalFields = []string{"tags", "description"}

// IncompleteReadError says a flag came back without fields flagsync plans with, from the
// list and from the single-flag GET alike: planning against it would show every missing
// field as a change to make.
type IncompleteReadError struct {
	SiteCode, FeatureKey string
	Missing              []string // wire names: environmentConfigurations, variations, …
	OptionalFields       []string // the optionalFields the reads asked for
	Listed               bool     // the list returned the flag incomplete first
}

// Error names the flag, what is missing, from which reads, and what was asked for.
func (e *IncompleteReadError) Error() string {
	from := "the single-flag GET"
	if e.Listed {
		from = "the list and from " + from
	}
	return fmt.Sprintf("read flag %s/%s: incomplete: %s missing from %s (asked optionalFields=%s); flagsync does not plan against an incomplete read",
		e.SiteCode, e.FeatureKey, strings.Join(e.Missing, ", "), from, strings.Join(e.OptionalFields, ","))
}

// IsIncompleteRead reports whether err is (or wraps) an *IncompleteReadError.
func IsIncompleteRead(err error) bool {
	var e *IncompleteReadError
	return errors.As(err, &e)
}

// optionalFields is which optionalFields names a client asks for: OptionalFields until
// the API refuses them, then DocumentedOptionalFields for the client's lifetime.
type optionalFields struct {
	mu         sync.Mutex
	documented bool
}

// names returns the names to ask for and whether they are the documented fallback.
func (o *optionalFields) names() ([]string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.documented {
		return DocumentedOptionalFields, true
	}
	return OptionalFields, false
}

// fallBack switches to the documented names and reports whether this call did it (so
// that the switch is logged once).
func (o *optionalFields) fallBack() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.documented {
		return false
	}
	o.documented = true
	return true
}

// OptionalFieldsInUse returns the optionalFields names the client asks for now:
// OptionalFields, or DocumentedOptionalFields once the API has refused those.
func (c *Client) OptionalFieldsInUse() []string {
	names, _ := c.fields.names()
	return slices.Clone(names)
}

func fieldsQuery(names []string) url.Values {
	return url.Values{"optionalFields": {strings.Join(names, ",")}}
}

// withOptionalFields sends a read (list page or single-flag GET) with the optionalFields
// the client asks for. A 400 to the full set, when the documented set then works, makes
// the client fall back for good, logging once which names were refused. A 400 that the
// documented set gets too is not about optionalFields: the first error is returned and
// nothing is remembered.
func (c *Client) withOptionalFields(send func(q url.Values) (*api.Response, error)) (*api.Response, []string, error) {
	names, fallen := c.fields.names()
	res, err := send(fieldsQuery(names))
	if fallen || !refusedRead(err) {
		return res, names, err
	}
	res2, err2 := send(fieldsQuery(DocumentedOptionalFields))
	if refusedRead(err2) {
		return nil, names, err
	}
	if err2 != nil {
		return nil, DocumentedOptionalFields, err2
	}
	if c.fields.fallBack() {
		var refused []string
		for _, n := range OptionalFields {
			if !slices.Contains(DocumentedOptionalFields, n) {
				refused = append(refused, n)
			}
		}
		c.log.Warn("the API refused flagsync's optionalFields; asking for the documented ones from now on, and reading flags the list leaves incomplete one by one",
			"refused", strings.Join(refused, ","), "asked", strings.Join(DocumentedOptionalFields, ","), "error", err.Error())
	}
	return res2, DocumentedOptionalFields, nil
}

// refusedRead reports whether err is a 400 to the read itself (not to the token
// request the read needed).
func refusedRead(err error) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Status == http.StatusBadRequest && e.Path != tokenPath
}

// missingFields lists the fields flagsync plans with that a flag in read shape lacks:
// environmentConfigurations and variations when absent, null or empty (Kameleoon always
// has at least one of each). When notAsked, the read did not ask for variables and
// secondaryGoalIds either, so those missing (absent or null) count too; an empty array
// does not, since a flag may have none.
func missingFields(raw json.RawMessage, notAsked bool) ([]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode flag: %w", err)
	}
	var missing []string
	for _, k := range []string{"environmentConfigurations", "variations"} {
		if v := bytes.TrimSpace(m[k]); len(v) == 0 || string(v) == "null" || emptyArray(v) {
			missing = append(missing, k)
		}
	}
	if notAsked {
		for _, k := range []string{"variables", "secondaryGoalIds"} {
			if v := bytes.TrimSpace(m[k]); len(v) == 0 || string(v) == "null" {
				missing = append(missing, k)
			}
		}
	}
	return missing, nil
}

func emptyArray(v []byte) bool {
	var a []json.RawMessage
	return json.Unmarshal(v, &a) == nil && len(a) == 0
}

// notAsked reports whether a read with these optionalFields left out names that
// OptionalFields holds.
func notAsked(names []string) bool {
	return slices.ContainsFunc(OptionalFields, func(n string) bool { return !slices.Contains(names, n) })
}
