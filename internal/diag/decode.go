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
	var first error
	decodeInto(v, reflect.ValueOf(into).Elem(), "", &first)
	if first != nil {
		return fmt.Errorf("cannot read the file's values: %w", first)
	}
	return nil
}

func decodeInto(v any, rv reflect.Value, at string, first *error) {
	fail := func(want string) {
		if *first == nil {
			*first = fmt.Errorf("%s: want %s, got %T", strings.TrimPrefix(at, "."), want, v)
		}
	}
	if v == nil {
		return // null leaves the zero value, as in encoding/json
	}
	switch rv.Kind() {
	case reflect.Pointer:
		p := reflect.New(rv.Type().Elem())
		decodeInto(v, p.Elem(), at, first)
		rv.Set(p)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			fail("a mapping")
			return
		}
		for _, f := range structFields(rv.Type()) {
			if x, ok := m[f.name]; ok {
				decodeInto(x, rv.Field(f.index), at+"."+f.name, first)
			}
		}
	case reflect.Slice:
		s, ok := v.([]any)
		if !ok {
			fail("a list")
			return
		}
		out := reflect.MakeSlice(rv.Type(), len(s), len(s))
		for i, x := range s {
			decodeInto(x, out.Index(i), at+"["+strconv.Itoa(i)+"]", first)
		}
		rv.Set(out)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok || rv.Type().Key().Kind() != reflect.String {
			fail("a mapping")
			return
		}
		out := reflect.MakeMapWithSize(rv.Type(), len(m))
		for k, x := range m {
			e := reflect.New(rv.Type().Elem()).Elem()
			decodeInto(x, e, at+"."+k, first)
			out.SetMapIndex(reflect.ValueOf(k).Convert(rv.Type().Key()), e)
		}
		rv.Set(out)
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			fail("a string")
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			fail("true or false")
			return
		}
		rv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			fail("a number")
			return
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || rv.OverflowInt(i) {
			f, ferr := strconv.ParseFloat(string(n), 64)
			if ferr != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 || rv.OverflowInt(int64(f)) {
				fail("a whole number in range")
				return
			}
			i = int64(f)
		}
		rv.SetInt(i)
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			fail("a number")
			return
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			fail("a number")
			return
		}
		rv.SetFloat(f)
	case reflect.Interface:
		rv.Set(reflect.ValueOf(plainJSON(v)))
	default:
		fail(rv.Type().String())
	}
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
