package diag

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// schemaNumber renders a schema keyword's number: 100, not 1e+02.
func schemaNumber(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// typeMessage is a "type" error: what the value must be, what it is, and, for a plain
// scalar where a string is wanted, how to quote it.
func typeMessage(kv any, n *yaml.Node) string {
	want := typeNames(kv)
	msg := "must be " + want + ", got " + describeNode(n)
	if strings.Contains(want, "string") && n.Kind == yaml.ScalarNode && n.Tag != "!!null" && n.Style == 0 {
		msg += "; quote it: " + strconv.Quote(n.Value)
	}
	return msg
}

// enumMessage is an "enum" error: the allowed values, what the value is, and the
// closest allowed one.
func enumMessage(kv, val any, n *yaml.Node) string {
	list, _ := kv.([]any)
	names := make([]string, len(list))
	for i, x := range list {
		names[i] = fmt.Sprint(x)
	}
	msg := "must be one of " + strings.Join(names, ", ")
	if s, ok := val.(string); ok {
		return fmt.Sprintf("%s, got %q", msg, s) + didYouMean(s, names)
	}
	return msg + ", got " + describeNode(n)
}

// lengthMessage is a "minLength" or "maxLength" error (pm is the schema holding both).
func lengthMessage(keyword string, kv any, pm map[string]any, val any) string {
	s, _ := val.(string)
	got := len([]rune(s))
	if pm["minLength"] != nil && pm["minLength"] == pm["maxLength"] {
		return fmt.Sprintf("must be exactly %s characters long, got %d", schemaNumber(kv), got)
	}
	if keyword == "minLength" {
		if schemaNumber(kv) == "1" {
			return "must not be empty"
		}
		return fmt.Sprintf("must be at least %s characters long, got %d", schemaNumber(kv), got)
	}
	return fmt.Sprintf("must be at most %s characters long, got %d", schemaNumber(kv), got)
}

// patternMessage is a "pattern" error, in words where the pattern has some.
func patternMessage(kv, val any) string {
	p := fmt.Sprint(kv)
	s, _ := val.(string)
	if help, ok := patternHelp[p]; ok {
		return fmt.Sprintf("%q is not valid: %s", s, help)
	}
	return fmt.Sprintf("%q does not match %s", s, p)
}

// countMessage is a "minItems", "maxItems" or "minProperties" error.
func countMessage(keyword string, kv any) string {
	switch {
	case keyword != "maxItems" && schemaNumber(kv) == "1":
		return "must not be empty"
	case keyword == "minItems":
		return "must have at least " + schemaNumber(kv) + " items"
	case keyword == "maxItems":
		return "must have at most " + schemaNumber(kv) + " items"
	}
	return "must have at least " + schemaNumber(kv) + " fields"
}
