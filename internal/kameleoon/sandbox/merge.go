package ksandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// mergePatch applies an RFC 7396 JSON Merge Patch: objects merge recursively, null removes
// a member, anything else (arrays included) replaces the target whole. Neither argument
// is modified.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	out := map[string]any{}
	if t, ok := target.(map[string]any); ok {
		for k, v := range t {
			out[k] = v
		}
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = mergePatch(out[k], v)
	}
	return out
}

// decodeObject parses a JSON object into a generic map, keeping numbers exactly as sent.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New(decodeMessage(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("body: unexpected data after the JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("body: must be a JSON object, got %s", jsonKind(v))
	}
	return m, nil
}

// toGeneric turns a typed value into the generic form a merge patch applies to.
func toGeneric(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sandbox: encode %T: %v", v, err)) // only the sandbox's own types reach here
	}
	m, err := decodeObject(b)
	if err != nil {
		panic(fmt.Sprintf("sandbox: decode %T: %v", v, err))
	}
	return m
}

// decodeStrict decodes data into v, rejecting members v does not know: a misspelt field
// is a 400, not a silent no-op.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(decodeMessage(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("body: unexpected data after the JSON value")
	}
	return nil
}

// decodeGeneric re-encodes a generic document and decodes it strictly into v.
func decodeGeneric(doc any, v any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return decodeStrict(b, v)
}

// decodeMessage turns encoding/json's errors into messages that name the JSON field, not
// the Go type.
func decodeMessage(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return fmt.Sprintf("%s: must be %s, got %s", field, kindOfType(te.Type), te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("body: malformed JSON at offset %d: %v", se.Offset, se)
	case errors.Is(err, io.EOF):
		return "body: empty, a JSON object is required"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "body: truncated JSON"
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + rest
	}
	return "body: " + strings.TrimPrefix(msg, "json: ")
}

func kindOfType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t == reflect.TypeFor[json.RawMessage]() {
			return "a JSON value"
		}
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	}
	return "an object"
}
