package policy

import (
	"fmt"
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Change is one planned change as a policy sees it: the neutral address of what it touches
// and the fields it sets. It mirrors the plan model's change without importing it.
type Change struct {
	// Service names the vendor that owns the flag ("kameleoon", "split", "unleash").
	Service string
	// Action is what the change does: "create", "update" or "archive".
	Action string
	// Scope is the vendor's container of flags: Kameleoon's siteCode, Split's workspace,
	// Unleash's project.
	Scope string
	// Key is the flag's identifier: Kameleoon's featureKey, Split's and Unleash's flag name.
	Key string
	// Environment is the environment the change patches; empty for a flag-level change.
	Environment string
	// Fields lists every field the change sets, in plan order.
	Fields []FieldChange
}

// FieldChange is one field a change sets. Path is written in the flag file's shape
// (environments.production.rolloutRules[name=beta testers].exposition); Before is nil for a
// field that did not exist, After is nil for a field that is removed. Both hold plain data
// (see Plain).
type FieldChange struct {
	Path   string
	Before any
	After  any
}

// CEL names of the two object types policies see. The package name "flagsync" keeps them out
// of the way of user-written identifiers.
const (
	changeTypeName = "flagsync.Change"
	fieldTypeName  = "flagsync.FieldChange"
)

var (
	changeType = types.NewObjectType(changeTypeName)
	fieldType  = types.NewObjectType(fieldTypeName)
)

// changeField describes one field of flagsync.Change as CEL sees it. slot is its place in
// changeVal's cache: each field is converted once per change, not once per policy.
type changeField struct {
	slot  int
	typ   *types.Type
	get   func(c *Change, a types.Adapter) ref.Val
	isSet func(c *Change) bool
}

// changeFields are the fields `change` offers: the Kameleoon names the issue promised, the
// neutral names every vendor shares, and the list of field changes.
var changeFields = map[string]changeField{
	"action":         strField(0, func(c *Change) string { return c.Action }),
	"service":        strField(1, func(c *Change) string { return c.Service }),
	"scope":          strField(2, func(c *Change) string { return c.Scope }),
	"siteCode":       strField(2, func(c *Change) string { return c.Scope }),
	"key":            strField(3, func(c *Change) string { return c.Key }),
	"featureKey":     strField(3, func(c *Change) string { return c.Key }),
	"environment":    strField(4, func(c *Change) string { return c.Environment }),
	"environmentKey": strField(4, func(c *Change) string { return c.Environment }),
	"fields": {
		slot:  5,
		typ:   types.NewListType(fieldType),
		get:   func(c *Change, a types.Adapter) ref.Val { return types.NewDynamicList(a, c.Fields) },
		isSet: func(c *Change) bool { return len(c.Fields) > 0 },
	},
}

// changeSlots is the number of cached fields of changeVal.
const changeSlots = 6

func strField(slot int, get func(*Change) string) changeField {
	return changeField{
		slot:  slot,
		typ:   types.StringType,
		get:   func(c *Change, _ types.Adapter) ref.Val { return types.String(get(c)) },
		isSet: func(c *Change) bool { return get(c) != "" },
	}
}

// fieldFields are the fields of flagsync.FieldChange.
var fieldFields = map[string]struct {
	typ   *types.Type
	get   func(f *FieldChange, a types.Adapter) ref.Val
	isSet func(f *FieldChange) bool
}{
	"path": {types.StringType,
		func(f *FieldChange, _ types.Adapter) ref.Val { return types.String(f.Path) },
		func(f *FieldChange) bool { return f.Path != "" }},
	"before": {types.DynType,
		func(f *FieldChange, a types.Adapter) ref.Val { return a.NativeToValue(f.Before) },
		func(f *FieldChange) bool { return f.Before != nil }},
	"after": {types.DynType,
		func(f *FieldChange, a types.Adapter) ref.Val { return a.NativeToValue(f.After) },
		func(f *FieldChange) bool { return f.After != nil }},
}

// provider declares flagsync.Change and flagsync.FieldChange to the type checker, so that a
// misspelt field (change.feild, change.fields[0].pathx) is a compile-time error, and gives
// the interpreter direct accessors for them; every other type goes to the base registry.
type provider struct {
	*types.Registry
	adapter types.Adapter
}

// FindStructType implements types.Provider.
func (p *provider) FindStructType(name string) (*types.Type, bool) {
	switch name {
	case changeTypeName:
		return types.NewTypeTypeWithParam(changeType), true
	case fieldTypeName:
		return types.NewTypeTypeWithParam(fieldType), true
	}
	return p.Registry.FindStructType(name)
}

// FindIdent implements types.Provider: the type names resolve to their types, so
// type(change) == flagsync.Change holds.
func (p *provider) FindIdent(name string) (ref.Val, bool) {
	switch name {
	case changeTypeName:
		return changeType, true
	case fieldTypeName:
		return fieldType, true
	}
	return p.Registry.FindIdent(name)
}

// FindStructFieldNames implements types.Provider.
func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	switch name {
	case changeTypeName:
		return sortedKeys(changeFields), true
	case fieldTypeName:
		return []string{"after", "before", "path"}, true
	}
	return p.Registry.FindStructFieldNames(name)
}

// FindStructFieldType implements types.Provider.
func (p *provider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	switch name {
	case changeTypeName:
		f, ok := changeFields[field]
		if !ok {
			return nil, false
		}
		return &types.FieldType{
			Type: f.typ,
			IsSet: func(target any) bool {
				v, ok := target.(*changeVal)
				return ok && f.isSet(v.c)
			},
			GetFrom: func(target any) (any, error) {
				v, ok := target.(*changeVal)
				if !ok {
					return nil, fmt.Errorf("select %s on %T: not a %s", field, target, changeTypeName)
				}
				if v.cache[f.slot] == nil {
					v.cache[f.slot] = f.get(v.c, p.adapter)
				}
				return v.cache[f.slot], nil
			},
		}, true
	case fieldTypeName:
		f, ok := fieldFields[field]
		if !ok {
			return nil, false
		}
		return &types.FieldType{
			Type:  f.typ,
			IsSet: func(target any) bool { fc, ok := target.(*FieldChange); return ok && f.isSet(fc) },
			GetFrom: func(target any) (any, error) {
				fc, ok := target.(*FieldChange)
				if !ok {
					return nil, fmt.Errorf("select %s on %T: not a %s", field, target, fieldTypeName)
				}
				return f.get(fc, p.adapter), nil
			},
		}, true
	}
	return p.Registry.FindStructFieldType(name, field)
}

// NewValue implements types.Provider: policies read changes, they never build them.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	switch name {
	case changeTypeName, fieldTypeName:
		return types.NewErr("%s cannot be constructed in a policy", name)
	}
	return p.Registry.NewValue(name, fields)
}

// adapter turns *Change and *FieldChange into their CEL values and leaves the rest to the
// base adapter (plain maps, lists and scalars).
type adapter struct{ base types.Adapter }

// NativeToValue implements types.Adapter.
func (a *adapter) NativeToValue(v any) ref.Val {
	switch t := v.(type) {
	case *Change:
		return &changeVal{c: t, adapter: a}
	case *changeVal:
		return t
	case *FieldChange:
		return &fieldVal{f: t, adapter: a}
	case FieldChange:
		return &fieldVal{f: &t, adapter: a}
	}
	if val, ok := lazyValue(a, v); ok {
		return val
	}
	return a.base.NativeToValue(v)
}

// changeVal is the CEL value of `change`. Its Value is itself, so that field accessors
// reach the cache of converted fields.
type changeVal struct {
	c       *Change
	adapter types.Adapter
	cache   [changeSlots]ref.Val
}

func (v *changeVal) ConvertToNative(t reflect.Type) (any, error) {
	if reflect.TypeOf(v.c).AssignableTo(t) {
		return v.c, nil
	}
	return nil, fmt.Errorf("convert %s to %v: unsupported", changeTypeName, t)
}
func (v *changeVal) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return changeType
	}
	return types.NewErr("type conversion error from %s to %s", changeTypeName, t.TypeName())
}
func (v *changeVal) Equal(other ref.Val) ref.Val {
	o, ok := other.(*changeVal)
	return types.Bool(ok && reflect.DeepEqual(v.c, o.c))
}
func (v *changeVal) Type() ref.Type { return changeType }
func (v *changeVal) Value() any     { return v }

// fieldVal is the CEL value of one element of change.fields.
type fieldVal struct {
	f       *FieldChange
	adapter types.Adapter
}

func (v *fieldVal) ConvertToNative(t reflect.Type) (any, error) {
	if reflect.TypeOf(v.f).AssignableTo(t) {
		return v.f, nil
	}
	return nil, fmt.Errorf("convert %s to %v: unsupported", fieldTypeName, t)
}
func (v *fieldVal) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return fieldType
	}
	return types.NewErr("type conversion error from %s to %s", fieldTypeName, t.TypeName())
}
func (v *fieldVal) Equal(other ref.Val) ref.Val {
	o, ok := other.(*fieldVal)
	if !ok || v.f.Path != o.f.Path {
		return types.False
	}
	if v.adapter.NativeToValue(v.f.Before).Equal(o.adapter.NativeToValue(o.f.Before)) != types.True {
		return types.False
	}
	return v.adapter.NativeToValue(v.f.After).Equal(o.adapter.NativeToValue(o.f.After))
}
func (v *fieldVal) Type() ref.Type { return fieldType }
func (v *fieldVal) Value() any     { return v.f }
