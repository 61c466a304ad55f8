package jsonpatch

import (
	"fmt"
	"strconv"
	"strings"
)

// Escape escapes one reference token for a JSON Pointer (RFC 6901): "~" becomes "~0" and
// "/" becomes "~1".
func Escape(token string) string {
	if !strings.ContainsAny(token, "~/") {
		return token
	}
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}

// Pointer builds a JSON Pointer from reference tokens: strings are escaped, ints are
// array indexes. Pointer() is "", the whole document.
func Pointer(tokens ...any) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		switch t := t.(type) {
		case int:
			b.WriteString(strconv.Itoa(t))
		case string:
			b.WriteString(Escape(t))
		default:
			panic(fmt.Sprintf("jsonpatch.Pointer: token %v is %T, want string or int", t, t))
		}
	}
	return b.String()
}

// ParsePointer splits a JSON Pointer into its unescaped reference tokens. "" is the whole
// document (no tokens); every other pointer starts with "/". A "~" must be followed by
// "0" or "1".
func ParsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("pointer %q: must be empty or start with /", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, s := range parts {
		if !strings.Contains(s, "~") {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(s); j++ {
			if s[j] != '~' {
				b.WriteByte(s[j])
				continue
			}
			if j+1 == len(s) || (s[j+1] != '0' && s[j+1] != '1') {
				return nil, fmt.Errorf("pointer %q: ~ must be followed by 0 or 1", p)
			}
			if s[j+1] == '0' {
				b.WriteByte('~')
			} else {
				b.WriteByte('/')
			}
			j++
		}
		parts[i] = b.String()
	}
	return parts, nil
}

// arrayIndex reads a reference token as an index into an array of length n. RFC 6901
// allows only "0" or digits without a leading zero; with end, "-" (the position after
// the last element) is accepted and gives n.
func arrayIndex(token string, n int, end bool) (int, error) {
	if token == "-" {
		if end {
			return n, nil
		}
		return 0, fmt.Errorf("index \"-\" refers to no element here")
	}
	if token == "" || len(token) > 1 && token[0] == '0' || strings.Trim(token, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not an array index", token)
	}
	i, err := strconv.Atoi(token)
	if err != nil {
		return 0, fmt.Errorf("array index %s is out of range", token)
	}
	limit := n - 1
	if end {
		limit = n
	}
	if i > limit {
		return 0, fmt.Errorf("array index %d is out of range (length %d)", i, n)
	}
	return i, nil
}
