package unleashmodel

import (
	"maps"
	"slices"
	"strings"
)

// NormaliseStrategy returns s as Unleash stores it, so that a value Unleash fills in is not
// a difference: a flexible rollout's missing rollout, stickiness and groupId get Unleash's
// defaults (100, default, the flag's name), variants are normalised (NormaliseVariants),
// segments are sorted, and empty lists are nil.
// Both sides of a comparison go through it; ID and SortOrder are kept.
func NormaliseStrategy(s Strategy, flagName string) Strategy {
	out := s
	out.Parameters = maps.Clone(s.Parameters)
	if s.Name == StrategyFlexibleRollout {
		if out.Parameters == nil {
			out.Parameters = map[string]string{}
		}
		if out.Parameters["rollout"] == "" {
			out.Parameters["rollout"] = "100"
		}
		if out.Parameters["stickiness"] == "" {
			out.Parameters["stickiness"] = DefaultStickiness
		}
		if out.Parameters["groupId"] == "" {
			out.Parameters["groupId"] = flagName
		}
	}
	if len(out.Parameters) == 0 {
		out.Parameters = nil
	}
	out.Constraints = nil
	for _, c := range s.Constraints {
		c.Values = slices.Clone(c.Values)
		if len(c.Values) == 0 {
			c.Values = nil
		}
		out.Constraints = append(out.Constraints, c)
	}
	out.Segments = slices.Clone(s.Segments)
	slices.Sort(out.Segments)
	out.Segments = slices.Compact(out.Segments)
	if len(out.Segments) == 0 {
		out.Segments = nil
	}
	out.Variants = NormaliseVariants(s.Variants)
	return out
}

// NormaliseVariants returns variants as flagsync compares them: the default weight type
// (variable) and stickiness filled in, sorted by name (Unleash returns them sorted), and the
// weight of each variable variant left at 0. Unleash computes variable weights itself from
// the fix ones (see FixWeights), so only fix weights are compared: which variable variant
// gets the remainder of an uneven share depends on the order they were sent in.
func NormaliseVariants(vs []Variant) []Variant {
	if len(vs) == 0 {
		return nil
	}
	out := make([]Variant, len(vs))
	for i, v := range vs {
		if v.WeightType == "" {
			v.WeightType = WeightVariable
		}
		if v.Stickiness == "" {
			v.Stickiness = DefaultStickiness
		}
		if v.WeightType == WeightVariable {
			v.Weight = 0
		}
		if v.Payload != nil {
			p := *v.Payload
			v.Payload = &p
		}
		out[i] = v
	}
	slices.SortStableFunc(out, func(a, b Variant) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// FixWeights returns vs with each variable variant's weight set as Unleash sets it when it
// stores them (fixVariantWeights): an equal share of what the fix weights leave of
// TotalWeight, the remainder going one by one to the first variable variants in the order
// given. flagsync sends the weights it computes here, in the same order, so what it sends is
// what Unleash keeps.
func FixWeights(vs []Variant) []Variant {
	out := slices.Clone(vs)
	fixed, variable := 0, 0
	for _, v := range out {
		if v.WeightType == WeightFix {
			fixed += v.Weight
		} else {
			variable++
		}
	}
	if variable == 0 || fixed > TotalWeight {
		return out
	}
	share, rest := (TotalWeight-fixed)/variable, (TotalWeight-fixed)%variable
	for i := range out {
		if out[i].WeightType == WeightFix {
			continue
		}
		out[i].Weight = share
		if rest > 0 {
			out[i].Weight++
			rest--
		}
	}
	return out
}

// NormaliseFlag returns f with every strategy normalised (see NormaliseStrategy), its tags
// sorted and its type spelled out.
func NormaliseFlag(f Flag) Flag {
	out := f
	out.Type = f.FeatureType()
	out.Tags = slices.Clone(f.Tags)
	slices.Sort(out.Tags)
	out.Tags = slices.Compact(out.Tags)
	if f.Environments != nil {
		out.Environments = make(map[string]Environment, len(f.Environments))
		for k, e := range f.Environments {
			ne := e
			ne.Strategies = nil
			for _, s := range e.Strategies {
				ne.Strategies = append(ne.Strategies, NormaliseStrategy(s, f.Name))
			}
			out.Environments[k] = ne
		}
	}
	return out
}
