package diag

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// decodeValue stores a converted JSON value (map[string]any, []any, string,
// json.Number, bool, nil) into the struct into points to, matching fields by their json
// tags as encoding/json does. It does what json.Marshal followed by json.Unmarshal would,
// without the round trip through bytes, which was a sixth of the loading time. Like
// encoding/json it goes on past a value of the wrong type and returns the first such
// error, so files with schema errors still decode as far as they can.
func decodeValue(v any, into any) error {
	d := decoder{}
	d.decode(v, reflect.ValueOf(into).Elem())
	if d.first != nil {
		return fmt.Errorf("cannot read the file's values: %w", d.first)
	}
	return nil
}

// decoder holds the path being decoded as a stack of steps, rendered as a field path
// only when a value has the wrong type: building the path string at every field was a
// third of the decoding time, and it is needed only for the error.
type decoder struct {
	path  []seg
	first error
}

func (d *decoder) fail(v any, want string) {
	if d.first == nil {
		d.first = fmt.Errorf("%s: want %s, got %T", decodePath(d.path), want, v)
	}
}

// decodePath renders the steps as the decoder's errors always have: .name for every
// key, [i] for every index, the leading dot left out.
func decodePath(path []seg) string {
	var b strings.Builder
	for _, s := range path {
		if s.idx >= 0 {
			b.WriteString("[" + strconv.Itoa(s.idx) + "]")
			continue
		}
		b.WriteString("." + s.key)
	}
	return strings.TrimPrefix(b.String(), ".")
}

func (d *decoder) decode(v any, rv reflect.Value) {
	if v == nil {
		return // null leaves the zero value, as in encoding/json
	}
	switch rv.Kind() {
	case reflect.Pointer:
		p := reflect.New(rv.Type().Elem())
		d.decode(v, p.Elem())
		rv.Set(p)
	case reflect.Struct:
		d.decodeStruct(v, rv)
	case reflect.Slice:
		d.decodeSlice(v, rv)
	case reflect.Map:
		d.decodeMap(v, rv)
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			d.fail(v, "a string")
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			d.fail(v, "true or false")
			return
		}
		rv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.decodeInt(v, rv)
	case reflect.Float32, reflect.Float64:
		d.decodeFloat(v, rv)
	case reflect.Interface:
		rv.Set(reflect.ValueOf(plainJSON(v)))
	default:
		d.fail(v, rv.Type().String())
	}
}

// decodeStruct decodes a mapping into a struct, key by json field name; keys that
// name no field are left alone.
func (d *decoder) decodeStruct(v any, rv reflect.Value) {
	m, ok := v.(map[string]any)
	if !ok {
		d.fail(v, "a mapping")
		return
	}
	for _, f := range structFields(rv.Type()) {
		if x, ok := m[f.name]; ok {
			d.path = append(d.path, seg{key: f.name, idx: -1})
			d.decode(x, rv.Field(f.index))
			d.path = d.path[:len(d.path)-1]
		}
	}
}

func (d *decoder) decodeSlice(v any, rv reflect.Value) {
	s, ok := v.([]any)
	if !ok {
		d.fail(v, "a list")
		return
	}
	out := reflect.MakeSlice(rv.Type(), len(s), len(s))
	for i, x := range s {
		d.path = append(d.path, seg{idx: i})
		d.decode(x, out.Index(i))
		d.path = d.path[:len(d.path)-1]
	}
	rv.Set(out)
}

// decodeMap decodes a mapping into a map with string keys.
func (d *decoder) decodeMap(v any, rv reflect.Value) {
	m, ok := v.(map[string]any)
	if !ok || rv.Type().Key().Kind() != reflect.String {
		d.fail(v, "a mapping")
		return
	}
	out := reflect.MakeMapWithSize(rv.Type(), len(m))
	for k, x := range m {
		e := reflect.New(rv.Type().Elem()).Elem()
		d.path = append(d.path, seg{key: k, idx: -1})
		d.decode(x, e)
		d.path = d.path[:len(d.path)-1]
		out.SetMapIndex(reflect.ValueOf(k).Convert(rv.Type().Key()), e)
	}
	rv.Set(out)
}

// decodeInt decodes a number into a signed integer: a whole number written with a
// fraction or an exponent (2.0, 1e3) is accepted, as long as it fits.
func (d *decoder) decodeInt(v any, rv reflect.Value) {
	n, ok := v.(json.Number)
	if !ok {
		d.fail(v, "a number")
		return
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || rv.OverflowInt(i) {
		f, ferr := strconv.ParseFloat(string(n), 64)
		if ferr != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 || rv.OverflowInt(int64(f)) {
			d.fail(v, "a whole number in range")
			return
		}
		i = int64(f)
	}
	rv.SetInt(i)
}

func (d *decoder) decodeFloat(v any, rv reflect.Value) {
	n, ok := v.(json.Number)
	if !ok {
		d.fail(v, "a number")
		return
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		d.fail(v, "a number")
		return
	}
	rv.SetFloat(f)
}

// plainJSON turns json.Number into float64 throughout, as encoding/json decodes into
// an `any`.
func plainJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plainJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainJSON(e)
		}
		return out
	}
	return v
}

type fieldInfo struct {
	name  string
	index int
}

var fieldCache sync.Map // reflect.Type → []fieldInfo

// structFields lists the exported fields of t by json name; fields tagged "-" are left
// out.
func structFields(t reflect.Type) []fieldInfo {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]fieldInfo)
	}
	var fs []fieldInfo
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		fs = append(fs, fieldInfo{name: name, index: i})
	}
	fieldCache.Store(t, fs)
	return fs
}
