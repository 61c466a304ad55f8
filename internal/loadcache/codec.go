package loadcache

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"unsafe"
)

// Codec encodes values of type T to bytes and decodes them back, for cache entries. The
// encoding is compact and carries no type information: both ends must use the same type,
// which the cache guarantees by keying entries by the binary's version and by the
// codec's Fingerprint. A nil slice or map stays nil and an empty one empty, so a decoded
// value is reflect.DeepEqual to the encoded one.
//
// It handles booleans, integers, floats, strings, slices, arrays, maps with string or
// integer keys, pointers, structs whose fields are all exported, and the empty interface
// holding JSON values (nil, bool, float64, string, []any, map[string]any). Decoding
// checks every length against the bytes left, so damaged bytes give an error, never a
// panic or a huge allocation.
//
// Decoding the 10,000 entries of the load benchmark's flags one by one, on one core of
// the project's 2-core machine, took 30 ms, against 160 ms with encoding/json, 570 ms
// with gob (an encoder per entry, as entries must be read one by one: gob sends its
// types with each) and 44 ms for one gob stream of all of them, which cannot be read
// entry by entry (BenchmarkEntryDecode in internal/kameleoon/load).
type Codec[T any] struct {
	c           *coder
	fingerprint string
}

// NewCodec builds the codec of T; it fails when T holds a kind it cannot encode.
func NewCodec[T any]() (*Codec[T], error) {
	t := reflect.TypeFor[T]()
	b := builder{building: map[reflect.Type]bool{}}
	c, err := b.build(t)
	if err != nil {
		return nil, fmt.Errorf("cache codec for %s: %w", t, err)
	}
	var desc strings.Builder
	describe(&desc, t)
	sum := sha256.Sum256([]byte("loadcache codec v1\n" + desc.String()))
	return &Codec[T]{c: c, fingerprint: hex.EncodeToString(sum[:16])}, nil
}

// Fingerprint identifies T's shape (its types, field names and order): put it in the
// Context so that entries of another shape are never decoded.
func (c *Codec[T]) Fingerprint() string { return c.fingerprint }

// Encode returns v's encoding.
func (c *Codec[T]) Encode(v *T) ([]byte, error) {
	e := encoder{buf: make([]byte, 0, 512)}
	c.c.enc(&e, unsafe.Pointer(v))
	return e.buf, e.err
}

// Decode stores the value data encodes in v, which should be the zero value.
func (c *Codec[T]) Decode(data []byte, v *T) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decode cache entry: %v", p)
		}
	}()
	// Every string decoded is a piece of one copy of data: one allocation per entry
	// instead of one per string.
	d := decoder{buf: data, str: string(data)}
	c.c.dec(&d, unsafe.Pointer(v))
	if d.err == nil && len(d.buf) > 0 {
		d.err = fmt.Errorf("%d bytes after the value", len(d.buf))
	}
	if d.err != nil {
		return fmt.Errorf("decode cache entry: %w", d.err)
	}
	return nil
}

// A coder encodes and decodes the value of one type at a pointer. Reflection is used
// only to build the coders (kinds, field offsets, element sizes); encoding and decoding
// read and write the memory of the value through pointers of its own types (the
// unsafe.Pointer rules' "conversion of a pointer to another type of the same layout"
// and unsafe.Add within one allocation), which takes half the time reflect.Value did
// on the cache's entries. Decoding checks every length against the bytes left before it
// allocates or writes.
type coder struct {
	enc func(*encoder, unsafe.Pointer)
	dec func(*decoder, unsafe.Pointer)
	min int // the fewest bytes a value takes
}

type encoder struct {
	buf []byte
	err error
}

func (e *encoder) uvarint(x uint64) { e.buf = binary.AppendUvarint(e.buf, x) }

func (e *encoder) fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(format, args...)
	}
}

type decoder struct {
	buf []byte // what is left to decode
	str string // all of the bytes decoded, as a string
	err error
}

// string reads n bytes as a string, a piece of d.str.
func (d *decoder) string(n uint64) string {
	if n > uint64(len(d.buf)) {
		d.fail("cut short")
		return ""
	}
	start := len(d.str) - len(d.buf)
	d.buf = d.buf[n:]
	return d.str[start : start+int(n)]
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
	d.buf = nil
}

func (d *decoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail("cut short")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

// uvarint reads a number written in its shortest form: every value has exactly one
// encoding, so nothing is read loosely.
func (d *decoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.buf)
	if n <= 0 || n > 1 && d.buf[n-1] == 0 { // a longer form than needed ends in a zero byte
		d.fail("bad or cut short number")
		return 0
	}
	d.buf = d.buf[n:]
	return x
}

func (d *decoder) varint() int64 {
	x, n := binary.Varint(d.buf)
	if n <= 0 || n > 1 && d.buf[n-1] == 0 {
		d.fail("bad or cut short number")
		return 0
	}
	d.buf = d.buf[n:]
	return x
}

func (d *decoder) bytes(n uint64) []byte {
	if n > uint64(len(d.buf)) {
		d.fail("cut short")
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

// count reads the length of a list or map written as length+1 (0: nil) and checks it
// against the bytes left; nil reports a nil list or map.
func (d *decoder) count(min int) (n int, isNil bool) {
	x := d.uvarint()
	if x == 0 {
		return 0, true
	}
	x--
	limit := uint64(1 << 20)
	if min > 0 {
		limit = uint64(len(d.buf) / min)
	}
	if x > limit {
		d.fail("length larger than the bytes left")
		return 0, true
	}
	return int(x), false
}

type builder struct {
	building map[reflect.Type]bool // types being built, to refuse recursive ones
}

// intCoder is the coder of a signed integer type I.
func intCoder[I int | int8 | int16 | int32 | int64]() *coder {
	return &coder{min: 1,
		enc: func(e *encoder, p unsafe.Pointer) { e.buf = binary.AppendVarint(e.buf, int64(*(*I)(p))) },
		dec: func(d *decoder, p unsafe.Pointer) {
			x := d.varint()
			if int64(I(x)) != x {
				d.fail("integer out of range")
				return
			}
			*(*I)(p) = I(x)
		}}
}

// uintCoder is the coder of an unsigned integer type U.
func uintCoder[U uint | uint8 | uint16 | uint32 | uint64 | uintptr]() *coder {
	return &coder{min: 1,
		enc: func(e *encoder, p unsafe.Pointer) { e.uvarint(uint64(*(*U)(p))) },
		dec: func(d *decoder, p unsafe.Pointer) {
			x := d.uvarint()
			if uint64(U(x)) != x {
				d.fail("integer out of range")
				return
			}
			*(*U)(p) = U(x)
		}}
}

func (b *builder) build(t reflect.Type) (*coder, error) {
	if b.building[t] {
		return nil, fmt.Errorf("recursive type %s", t)
	}
	b.building[t] = true
	defer delete(b.building, t)

	if c := scalarCoder(t.Kind()); c != nil {
		return c, nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return b.pointerCoder(t)
	case reflect.Slice:
		return b.sliceCoder(t)
	case reflect.Array:
		return b.arrayCoder(t)
	case reflect.Map:
		return b.mapCoder(t)
	case reflect.Struct:
		return b.structCoder(t)
	case reflect.Interface:
		return interfaceCoder(t)
	}
	return nil, fmt.Errorf("type %s of kind %s", t, t.Kind())
}

// scalarCoder is the coder of a boolean, number or string kind, nil for other kinds.
func scalarCoder(k reflect.Kind) *coder {
	switch k {
	case reflect.Bool:
		return boolCoder()
	case reflect.Int:
		return intCoder[int]()
	case reflect.Int8:
		return intCoder[int8]()
	case reflect.Int16:
		return intCoder[int16]()
	case reflect.Int32:
		return intCoder[int32]()
	case reflect.Int64:
		return intCoder[int64]()
	case reflect.Uint:
		return uintCoder[uint]()
	case reflect.Uint8:
		return uintCoder[uint8]()
	case reflect.Uint16:
		return uintCoder[uint16]()
	case reflect.Uint32:
		return uintCoder[uint32]()
	case reflect.Uint64:
		return uintCoder[uint64]()
	case reflect.Uintptr:
		return uintCoder[uintptr]()
	case reflect.Float32:
		return float32Coder()
	case reflect.Float64:
		return float64Coder()
	case reflect.String:
		return stringCoder()
	}
	return nil
}

func boolCoder() *coder {
	return &coder{min: 1,
		enc: func(e *encoder, p unsafe.Pointer) { e.buf = append(e.buf, boolByte(*(*bool)(p))) },
		dec: func(d *decoder, p unsafe.Pointer) {
			switch d.byte() {
			case 0:
				*(*bool)(p) = false
			case 1:
				*(*bool)(p) = true
			default:
				d.fail("bad boolean")
			}
		}}
}

func float32Coder() *coder {
	return &coder{min: 4,
		enc: func(e *encoder, p unsafe.Pointer) {
			e.buf = binary.LittleEndian.AppendUint32(e.buf, math.Float32bits(*(*float32)(p)))
		},
		dec: func(d *decoder, p unsafe.Pointer) {
			if b := d.bytes(4); b != nil {
				*(*float32)(p) = math.Float32frombits(binary.LittleEndian.Uint32(b))
			}
		}}
}

func float64Coder() *coder {
	return &coder{min: 8,
		enc: func(e *encoder, p unsafe.Pointer) {
			e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(*(*float64)(p)))
		},
		dec: func(d *decoder, p unsafe.Pointer) {
			if b := d.bytes(8); b != nil {
				*(*float64)(p) = math.Float64frombits(binary.LittleEndian.Uint64(b))
			}
		}}
}

func stringCoder() *coder {
	return &coder{min: 1,
		enc: func(e *encoder, p unsafe.Pointer) {
			s := *(*string)(p)
			e.uvarint(uint64(len(s)))
			e.buf = append(e.buf, s...)
		},
		dec: func(d *decoder, p unsafe.Pointer) { *(*string)(p) = d.string(d.uvarint()) }}
}

// pointerCoder writes a pointer as 0 (nil) or 1 followed by the value it points to.
func (b *builder) pointerCoder(t reflect.Type) (*coder, error) {
	elem, err := b.build(t.Elem())
	if err != nil {
		return nil, err
	}
	et := t.Elem()
	return &coder{min: 1,
		enc: func(e *encoder, p unsafe.Pointer) {
			q := *(*unsafe.Pointer)(p)
			if q == nil {
				e.buf = append(e.buf, 0)
				return
			}
			e.buf = append(e.buf, 1)
			elem.enc(e, q)
		},
		dec: func(d *decoder, p unsafe.Pointer) {
			switch d.byte() {
			case 0:
				*(*unsafe.Pointer)(p) = nil
			case 1:
				q := reflect.New(et).UnsafePointer()
				elem.dec(d, q)
				*(*unsafe.Pointer)(p) = q
			default:
				d.fail("bad pointer")
			}
		}}, nil
}

// sliceCoder writes a slice as its length+1 (0: nil) followed by its elements.
func (b *builder) sliceCoder(t reflect.Type) (*coder, error) {
	elem, err := b.build(t.Elem())
	if err != nil {
		return nil, err
	}
	size := t.Elem().Size()
	return &coder{min: 1,
		enc: func(e *encoder, p unsafe.Pointer) {
			v := reflect.NewAt(t, p).Elem()
			if v.IsNil() {
				e.uvarint(0)
				return
			}
			n := v.Len()
			e.uvarint(uint64(n) + 1)
			base := v.UnsafePointer()
			for i := range n {
				elem.enc(e, unsafe.Add(base, uintptr(i)*size))
			}
		},
		dec: func(d *decoder, p unsafe.Pointer) {
			n, isNil := d.count(elem.min)
			if isNil {
				return
			}
			base := reflect.MakeSlice(t, n, n).UnsafePointer()
			for i := 0; i < n && d.err == nil; i++ {
				elem.dec(d, unsafe.Add(base, uintptr(i)*size))
			}
			*(*sliceHeader)(p) = sliceHeader{data: base, len: n, cap: n}
		}}, nil
}

// arrayCoder writes an array as its elements, its length being part of its type.
func (b *builder) arrayCoder(t reflect.Type) (*coder, error) {
	elem, err := b.build(t.Elem())
	if err != nil {
		return nil, err
	}
	size, n := t.Elem().Size(), t.Len()
	return &coder{min: elem.min * n,
		enc: func(e *encoder, p unsafe.Pointer) {
			for i := range n {
				elem.enc(e, unsafe.Add(p, uintptr(i)*size))
			}
		},
		dec: func(d *decoder, p unsafe.Pointer) {
			for i := 0; i < n && d.err == nil; i++ {
				elem.dec(d, unsafe.Add(p, uintptr(i)*size))
			}
		}}, nil
}

// interfaceCoder is the coder of an empty interface type holding JSON values.
func interfaceCoder(t reflect.Type) (*coder, error) {
	if t.NumMethod() != 0 {
		return nil, fmt.Errorf("interface type %s (only the empty interface, holding JSON values)", t)
	}
	// An empty interface type has the layout of any, named or not.
	return &coder{min: 1,
		enc: func(e *encoder, p unsafe.Pointer) { encodeJSON(e, *(*any)(p)) },
		dec: func(d *decoder, p unsafe.Pointer) { *(*any)(p) = decodeJSONValue(d, 0) }}, nil
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// sliceHeader is the layout of every slice value (what unsafe.Slice builds).
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

func (b *builder) mapCoder(t reflect.Type) (*coder, error) {
	switch t.Key().Kind() {
	case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
	default:
		return nil, fmt.Errorf("map key type %s (only strings and integers)", t.Key())
	}
	key, err := b.build(t.Key())
	if err != nil {
		return nil, err
	}
	elem, err := b.build(t.Elem())
	if err != nil {
		return nil, err
	}
	kt, vt := t.Key(), t.Elem()
	return &coder{min: 1,
		enc: func(e *encoder, p unsafe.Pointer) {
			v := reflect.NewAt(t, p).Elem()
			if v.IsNil() {
				e.uvarint(0)
				return
			}
			e.uvarint(uint64(v.Len()) + 1)
			keys := v.MapKeys()
			// Sorted, so that the same map always gives the same bytes.
			slices.SortFunc(keys, compareKeys)
			k := reflect.New(kt)
			x := reflect.New(vt)
			for _, kv := range keys {
				k.Elem().Set(kv)
				key.enc(e, k.UnsafePointer())
				x.Elem().Set(v.MapIndex(kv))
				elem.enc(e, x.UnsafePointer())
			}
		},
		dec: func(d *decoder, p unsafe.Pointer) {
			n, isNil := d.count(key.min + elem.min)
			if isNil {
				return
			}
			m := reflect.MakeMapWithSize(t, n)
			// SetMapIndex copies the key and the value: one of each serves every entry.
			k := reflect.New(kt)
			x := reflect.New(vt)
			prev := reflect.New(kt).Elem()
			for i := 0; i < n && d.err == nil; i++ {
				k.Elem().SetZero()
				key.dec(d, k.UnsafePointer())
				if i > 0 && compareKeys(prev, k.Elem()) >= 0 {
					d.fail("map keys out of order") // Encode sorts them
					return
				}
				prev.Set(k.Elem())
				x.Elem().SetZero()
				elem.dec(d, x.UnsafePointer())
				m.SetMapIndex(k.Elem(), x.Elem())
			}
			reflect.NewAt(t, p).Elem().Set(m)
		}}, nil
}

// compareKeys orders map keys (strings or integers).
func compareKeys(a, b reflect.Value) int {
	if a.Kind() == reflect.String {
		return strings.Compare(a.String(), b.String())
	}
	return cmp.Compare(a.Int(), b.Int())
}

func (b *builder) structCoder(t reflect.Type) (*coder, error) {
	type field struct {
		offset uintptr
		c      *coder
	}
	fields := make([]field, 0, t.NumField())
	min := 0
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			return nil, fmt.Errorf("unexported field %s.%s", t, f.Name)
		}
		c, err := b.build(f.Type)
		if err != nil {
			return nil, err
		}
		fields = append(fields, field{f.Offset, c})
		min += c.min
	}
	return &coder{min: min,
		enc: func(e *encoder, p unsafe.Pointer) {
			for _, f := range fields {
				f.c.enc(e, unsafe.Add(p, f.offset))
			}
		},
		dec: func(d *decoder, p unsafe.Pointer) {
			for _, f := range fields {
				if d.err != nil {
					return
				}
				f.c.dec(d, unsafe.Add(p, f.offset))
			}
		}}, nil
}

// Tags of the JSON values an empty interface may hold.
const (
	jsonNull byte = iota
	jsonFalse
	jsonTrue
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

// maxDepth bounds the nesting of JSON values decoded, as encoding/json does.
const maxDepth = 10000

func encodeJSON(e *encoder, x any) {
	switch x := x.(type) {
	case nil:
		e.buf = append(e.buf, jsonNull)
	case bool:
		e.buf = append(e.buf, jsonFalse+boolByte(x))
	case float64:
		e.buf = append(e.buf, jsonNumber)
		e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(x))
	case string:
		e.buf = append(e.buf, jsonString)
		e.uvarint(uint64(len(x)))
		e.buf = append(e.buf, x...)
	case []any:
		e.buf = append(e.buf, jsonArray)
		if x == nil {
			e.uvarint(0)
			return
		}
		e.uvarint(uint64(len(x)) + 1)
		for _, item := range x {
			encodeJSON(e, item)
		}
	case map[string]any:
		e.buf = append(e.buf, jsonObject)
		if x == nil {
			e.uvarint(0)
			return
		}
		e.uvarint(uint64(len(x)) + 1)
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			e.uvarint(uint64(len(k)))
			e.buf = append(e.buf, k...)
			encodeJSON(e, x[k])
		}
	default:
		e.fail("a %T in an interface (only JSON values)", x)
	}
}

func decodeJSONValue(d *decoder, depth int) any {
	if depth > maxDepth {
		d.fail("values nested too deep")
		return nil
	}
	switch d.byte() {
	case jsonNull:
		return nil
	case jsonFalse:
		return false
	case jsonTrue:
		return true
	case jsonNumber:
		if b := d.bytes(8); b != nil {
			return math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		return nil
	case jsonString:
		return d.string(d.uvarint())
	case jsonArray:
		n, isNil := d.count(1)
		if isNil {
			return []any(nil)
		}
		out := make([]any, n)
		for i := 0; i < n && d.err == nil; i++ {
			out[i] = decodeJSONValue(d, depth+1)
		}
		return out
	case jsonObject:
		n, isNil := d.count(2)
		if isNil {
			return map[string]any(nil)
		}
		out := make(map[string]any, n)
		prev := ""
		for i := 0; i < n && d.err == nil; i++ {
			k := d.string(d.uvarint())
			if i > 0 && k <= prev {
				d.fail("keys out of order") // encodeJSON sorts them
				return nil
			}
			prev = k
			out[k] = decodeJSONValue(d, depth+1)
		}
		return out
	}
	d.fail("bad value tag")
	return nil
}

// describe writes t's shape: what the encoding depends on.
func describe(b *strings.Builder, t reflect.Type) {
	if t.Name() != "" {
		b.WriteString(t.PkgPath() + "." + t.Name() + ":")
	}
	switch t.Kind() {
	case reflect.Pointer:
		b.WriteString("*")
		describe(b, t.Elem())
	case reflect.Slice:
		b.WriteString("[]")
		describe(b, t.Elem())
	case reflect.Array:
		fmt.Fprintf(b, "[%d]", t.Len())
		describe(b, t.Elem())
	case reflect.Map:
		b.WriteString("map[")
		describe(b, t.Key())
		b.WriteString("]")
		describe(b, t.Elem())
	case reflect.Struct:
		b.WriteString("struct{")
		for i := range t.NumField() {
			f := t.Field(i)
			b.WriteString(f.Name + " ")
			describe(b, f.Type)
			b.WriteString(";")
		}
		b.WriteString("}")
	default:
		b.WriteString(t.Kind().String())
	}
}
