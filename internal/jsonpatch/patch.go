package jsonpatch

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Operation names (RFC 6902 §4).
const (
	OpAdd     = "add"
	OpRemove  = "remove"
	OpReplace = "replace"
	OpMove    = "move"
	OpCopy    = "copy"
	OpTest    = "test"
)

// Operation is one RFC 6902 operation. Value is used by add, replace and test (nil is
// JSON null); From by move and copy.
type Operation struct {
	Op    string
	Path  string
	From  string
	Value any
}

// MarshalJSON writes the operation with its members in the order op, path, from, value,
// and only the members its op uses, so that a plan shows exactly what is sent.
func (o Operation) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"op":`)
	b.Write(encode(o.Op))
	b.WriteString(`,"path":`)
	b.Write(encode(o.Path))
	switch o.Op {
	case OpMove, OpCopy:
		b.WriteString(`,"from":`)
		b.Write(encode(o.From))
	case OpAdd, OpReplace, OpTest:
		v, err := marshal(o.Value)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", o.Op, o.Path, err)
		}
		b.WriteString(`,"value":`)
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Patch is an RFC 6902 patch document: operations applied in order, all or nothing.
type Patch []Operation

// JSON encodes the patch as the array that is sent. Values must be JSON-encodable; a
// value that is not is a programming error and panics.
func (p Patch) JSON() json.RawMessage {
	if p == nil {
		p = Patch{}
	}
	b, err := marshal(p)
	if err != nil {
		panic(fmt.Sprintf("jsonpatch: encode patch: %v", err))
	}
	return b
}

// marshal encodes v without HTML escaping and without a trailing newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func encode(s string) []byte {
	b, _ := marshal(s) // a string always encodes
	return b
}
