package plan

import (
	"fmt"
	"math"
	"slices"
)

// DefaultMaxArchive is the most flags one plan may archive by pruning when
// a planner's MaxArchive is 0.
const DefaultMaxArchive = 5

// MassArchiveFraction is the largest share of a scope's managed flags one plan may
// archive by pruning; a scope may always lose at least one flag.
const MassArchiveFraction = 0.10

// MassArchiveError is returned by a vendor's planner when pruning would archive more
// flags than the guard allows. The plan returned with it holds every other change and
// lists the refused flags in Plan.Blocked.
type MassArchiveError struct {
	Flags []Address // the flags pruning would have archived, sorted
	Limit string    // the limit that was crossed, for people
}

// Error says how many flags pruning would have archived and which limit that crossed.
func (e *MassArchiveError) Error() string {
	return fmt.Sprintf("plan prune: refusing to archive %d flags at once (%s) without the mass-archive override", len(e.Flags), e.Limit)
}

// MassArchiveLimit returns the limit pruning the flags prune would cross, or "" when it
// may proceed: more than maxArchive flags in all (0 means DefaultMaxArchive, a negative
// value no limit on the count), or more than MassArchiveFraction of the managed flags of
// one scope (managed counts them per scope; unit names a scope in the message: "site",
// "workspace"). allow lifts both limits. Each vendor's planner applies this one guard.
func MassArchiveLimit(prune []Address, managed map[string]int, maxArchive int, allow bool, unit string) string {
	if len(prune) == 0 || allow {
		return ""
	}
	maxTotal := maxArchive
	if maxTotal == 0 {
		maxTotal = DefaultMaxArchive
	}
	if maxTotal > 0 && len(prune) > maxTotal {
		return fmt.Sprintf("more than %d flags", maxTotal)
	}
	perSite := map[string]int{}
	for _, ref := range prune {
		perSite[ref.Scope]++
	}
	sites := make([]string, 0, len(perSite))
	for s := range perSite {
		sites = append(sites, s)
	}
	slices.Sort(sites)
	for _, s := range sites {
		allowed := max(1, int(math.Floor(MassArchiveFraction*float64(managed[s]))))
		if perSite[s] > allowed {
			return fmt.Sprintf("%d of the %d managed flags of %s %s, more than %.0f%%", perSite[s], managed[s], unit, s, MassArchiveFraction*100)
		}
	}
	return ""
}

// EnvOrder lists the keys of envs in the configured order, then the rest alphabetically:
// the order a plan's environment changes are applied in.
func EnvOrder[V any](envs map[string]V, order []string) []string {
	keys := make([]string, 0, len(envs))
	for _, k := range order {
		if _, ok := envs[k]; ok && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	listed := len(keys)
	for k := range envs {
		if !slices.Contains(order, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys[listed:])
	return keys
}
