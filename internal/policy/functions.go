package policy

import (
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// functions are flagsync's own CEL functions. Each does in Go what a policy would
// otherwise spell as a comprehension; policies run for every change of every plan, and a
// comprehension costs several times more (see BenchmarkEvaluate30000Changes).
//
//	change.touches(env)  true when the change patches environment env, or sets a field
//	                     under environments.<env> (a create that configures it)
//	x.pick(keys)         a map with only the keys listed (those it has); on a list, each
//	                     map element picked
//	x.omit(keys)         a map without the keys listed; on a list, each map element so
//	list.indexBy(key)    a map from each element's key field to the element (elements
//	                     without it are left out; of two with the same value, the last)
//	date(text)           the timestamp of a date (2026-06-30, midnight UTC) or an RFC 3339
//	                     date-time, as flag files write them
func functions(a types.Adapter) []cel.EnvOption {
	keys := cel.ListType(cel.StringType)
	return []cel.EnvOption{
		cel.Function("touches",
			cel.MemberOverload("flagsync_change_touches_string", []*cel.Type{changeType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(lhs, rhs ref.Val) ref.Val {
					c, ok := lhs.(*changeVal)
					env, ok2 := rhs.(types.String)
					if !ok || !ok2 {
						return types.NewErr("touches: want change.touches(string)")
					}
					return types.Bool(c.c.touches(string(env)))
				}))),
		// The receivers are dyn, not map(string, dyn): a typed receiver makes the runtime
		// check every entry's type on each call.
		cel.Function("pick",
			cel.MemberOverload("flagsync_dyn_pick_list", []*cel.Type{cel.DynType, keys}, cel.DynType,
				cel.BinaryBinding(func(lhs, rhs ref.Val) ref.Val { return project(a, lhs, rhs, true) }))),
		cel.Function("omit",
			cel.MemberOverload("flagsync_dyn_omit_list", []*cel.Type{cel.DynType, keys}, cel.DynType,
				cel.BinaryBinding(func(lhs, rhs ref.Val) ref.Val { return project(a, lhs, rhs, false) }))),
		cel.Function("indexBy",
			cel.MemberOverload("flagsync_dyn_indexby_string", []*cel.Type{cel.DynType, cel.StringType}, cel.MapType(cel.DynType, cel.DynType),
				cel.BinaryBinding(func(lhs, rhs ref.Val) ref.Val { return indexBy(a, lhs, rhs) }))),
		cel.Function("date",
			cel.Overload("flagsync_date_string", []*cel.Type{cel.StringType}, cel.TimestampType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					s, ok := v.(types.String)
					if !ok {
						return types.NewErr("date: want a string, got %s", v.Type().TypeName())
					}
					t, err := parseDate(string(s))
					if err != nil {
						return types.NewErr("%v", err)
					}
					return types.Timestamp{Time: t}
				}))),
	}
}

// touches reports whether the change patches env or sets a field under environments.env.
func (c *Change) touches(env string) bool {
	if c.Environment == env {
		return true
	}
	for i := range c.Fields {
		rest, ok := strings.CutPrefix(c.Fields[i].Path, "environments.")
		if !ok {
			continue
		}
		if rest, ok = strings.CutPrefix(rest, env); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			return true
		}
	}
	return false
}

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, &dateError{text: s}
}

type dateError struct{ text string }

func (e *dateError) Error() string {
	return "date: " + `"` + e.text + `" is neither a date (2026-06-30) nor an RFC 3339 date-time (2026-06-30T12:00:00Z)`
}

// project returns the map x with only (keep) or without (!keep) the keys of list, or, for
// a list, each of its map elements so.
func project(a types.Adapter, x, list ref.Val, keep bool) ref.Val {
	lister, ok := list.(traits.Lister)
	if !ok {
		return types.NewErr("pick/omit: argument is %s, not a list", list.Type().TypeName())
	}
	n := int(lister.Size().(types.Int))
	keys := make([]ref.Val, n)
	for i := range n {
		keys[i] = lister.Get(types.Int(i))
	}
	switch v := x.(type) {
	case traits.Mapper:
		return projectMap(a, v, keys, keep)
	case traits.Lister:
		size := int(v.Size().(types.Int))
		out := make([]ref.Val, size)
		for i := range size {
			e := v.Get(types.Int(i))
			if m, ok := e.(traits.Mapper); ok {
				e = projectMap(a, m, keys, keep)
			}
			out[i] = e
		}
		return types.NewRefValList(a, out)
	}
	return types.NewErr("pick/omit: receiver is %s, not a map or list", x.Type().TypeName())
}

// projectMap is a copy of m with only (keep) or without (!keep) keys.
func projectMap(a types.Adapter, m traits.Mapper, keys []ref.Val, keep bool) ref.Val {
	if keep {
		// String keys (the keys argument is list(string)) hash faster than ref.Val keys.
		out := make(map[string]any, len(keys))
		for _, k := range keys {
			ks, ok := k.(types.String)
			if !ok {
				return types.NewErr("pick: keys must be strings, got %s", k.Type().TypeName())
			}
			if v, found := m.Find(k); found {
				out[string(ks)] = v
			}
		}
		return types.NewStringInterfaceMap(a, out)
	}
	out := make(map[ref.Val]ref.Val, len(keys))
	it := m.Iterator()
	for it.HasNext() == types.True {
		k := it.Next()
		drop := false
		for _, d := range keys {
			if d.Equal(k) == types.True {
				drop = true
				break
			}
		}
		if !drop {
			out[k], _ = m.Find(k)
		}
	}
	return types.NewRefValMap(a, out)
}

// indexBy maps each map element of list to its field key.
func indexBy(a types.Adapter, list, key ref.Val) ref.Val {
	l, ok := list.(traits.Lister)
	if !ok {
		return types.NewErr("indexBy: receiver is %s, not a list", list.Type().TypeName())
	}
	size := int(l.Size().(types.Int))
	out := make(map[ref.Val]ref.Val, size)
	for i := range size {
		e := l.Get(types.Int(i))
		m, ok := e.(traits.Mapper)
		if !ok {
			continue
		}
		if k, found := m.Find(key); found {
			out[k] = e
		}
	}
	return types.NewRefValMap(a, out)
}
