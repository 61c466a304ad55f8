package policy

import (
	"sync"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Lazy is a part of a flag or live document that is built when a policy first reads it.
// Most policies read one environment of a flag, or none: a vendor that hands over its
// environments as Lazy values builds only those read. A Lazy is built at most once and is
// safe for concurrent use; its value must be plain data (see Plain), which may hold Lazy
// values in turn.
type Lazy struct {
	once  sync.Once
	build func() any
	v     any
}

// NewLazy returns the Lazy value that build makes.
func NewLazy(build func() any) *Lazy { return &Lazy{build: build} }

// Value builds the value, once, and returns it.
func (l *Lazy) Value() any {
	l.once.Do(func() {
		l.v = l.build()
		l.build = nil
	})
	return l.v
}

// Resolve returns a copy of v with every Lazy inside it built: plain data only.
func Resolve(v any) any {
	switch t := v.(type) {
	case *Lazy:
		return Resolve(t.Value())
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = Resolve(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = Resolve(e)
		}
		return out
	}
	return v
}

// lazyValue converts the plain data of a document to CEL values through a, so that the
// Lazy values inside maps and lists are built when they are read.
func lazyValue(a types.Adapter, v any) (ref.Val, bool) {
	switch t := v.(type) {
	case *Lazy:
		return a.NativeToValue(t.Value()), true
	case map[string]any:
		return types.NewStringInterfaceMap(a, t), true
	case []any:
		return types.NewDynamicList(a, t), true
	}
	return nil, false
}
