package kclient

import (
	"context"
	"encoding/json"
	"fmt"

	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// Facts are what the list says of a flag's life that the model leaves out: fields
// Kameleoon sets and flag files never write.
type Facts struct {
	// DateCreated is the flag's dateCreated, as Kameleoon writes it.
	DateCreated string
	// Health is Kameleoon's verdict: PERMANENT, HEALTHY, STALE or SMELLY.
	Health string
	// EnvironmentModified is each environment's dateModified, by environment key.
	EnvironmentModified map[string]string
}

// ListFlagsWithFacts is ListFlags, and each listed flag's Facts by flag, from the same
// calls: flagsync report and the daemon's lifecycle metrics need no call of their own.
func (c *Client) ListFlagsWithFacts(ctx context.Context, siteCode string) ([]kmodel.Flag, map[kmodel.Ref]Facts, error) {
	raws, err := c.ListFlagsRaw(ctx, siteCode)
	if err != nil {
		return nil, nil, err
	}
	out := make([]kmodel.Flag, 0, len(raws))
	facts := make(map[kmodel.Ref]Facts, len(raws))
	for _, raw := range raws {
		f, conflicts, err := decodeFlag(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("list flags of site %s: %w", siteCode, err)
		}
		if f.SiteCode == "" {
			f.SiteCode = siteCode
		}
		c.warnOrderConflicts(f.Ref(), conflicts)
		out = append(out, f)
		facts[f.Ref()] = DecodeFacts(raw)
	}
	return out, facts, nil
}

// DecodeFacts reads the Facts of one flag in the API's read shape; what is missing or
// malformed stays empty.
func DecodeFacts(raw json.RawMessage) Facts {
	var r struct {
		DateCreated               string `json:"dateCreated"`
		Health                    string `json:"health"`
		EnvironmentConfigurations []struct {
			EnvironmentKey string `json:"environmentKey"`
			DateModified   string `json:"dateModified"`
		} `json:"environmentConfigurations"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return Facts{}
	}
	f := Facts{DateCreated: r.DateCreated, Health: r.Health}
	for _, e := range r.EnvironmentConfigurations {
		if e.DateModified != "" {
			if f.EnvironmentModified == nil {
				f.EnvironmentModified = map[string]string{}
			}
			f.EnvironmentModified[e.EnvironmentKey] = e.DateModified
		}
	}
	return f
}
