package jsonpatch

import (
	"encoding/json"
	"errors"
	"testing"
)

// jsonEqual compares two JSON texts as values.
func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	va, err := decode([]byte(a))
	if err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	vb, err := decode([]byte(b))
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return Equal(va, vb)
}

// TestRFC6902Examples runs every example of RFC 6902 Appendix A, and the cases of the
// specification's text that the examples leave out.
func TestRFC6902Examples(t *testing.T) {
	tests := []struct {
		name, doc, patch, want string
		testFailed             bool // the patch must fail with a failed test
		fails                  bool // the patch must fail otherwise
	}{
		{name: "A.1 adding an object member", doc: `{"foo":"bar"}`,
			patch: `[{"op":"add","path":"/baz","value":"qux"}]`, want: `{"baz":"qux","foo":"bar"}`},
		{name: "A.2 adding an array element", doc: `{"foo":["bar","baz"]}`,
			patch: `[{"op":"add","path":"/foo/1","value":"qux"}]`, want: `{"foo":["bar","qux","baz"]}`},
		{name: "A.3 removing an object member", doc: `{"baz":"qux","foo":"bar"}`,
			patch: `[{"op":"remove","path":"/baz"}]`, want: `{"foo":"bar"}`},
		{name: "A.4 removing an array element", doc: `{"foo":["bar","qux","baz"]}`,
			patch: `[{"op":"remove","path":"/foo/1"}]`, want: `{"foo":["bar","baz"]}`},
		{name: "A.5 replacing a value", doc: `{"baz":"qux","foo":"bar"}`,
			patch: `[{"op":"replace","path":"/baz","value":"boo"}]`, want: `{"baz":"boo","foo":"bar"}`},
		{name: "A.6 moving a value", doc: `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`,
			patch: `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`,
			want:  `{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`},
		{name: "A.7 moving an array element", doc: `{"foo":["all","grass","cows","eat"]}`,
			patch: `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`, want: `{"foo":["all","cows","eat","grass"]}`},
		{name: "A.8 testing a value: success", doc: `{"baz":"qux","foo":["a",2,"c"]}`,
			patch: `[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]`,
			want:  `{"baz":"qux","foo":["a",2,"c"]}`},
		{name: "A.9 testing a value: error", doc: `{"baz":"qux"}`,
			patch: `[{"op":"test","path":"/baz","value":"bar"}]`, testFailed: true},
		{name: "A.10 adding a nested member object", doc: `{"foo":"bar"}`,
			patch: `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`, want: `{"foo":"bar","child":{"grandchild":{}}}`},
		{name: "A.11 ignoring unrecognized elements", doc: `{"foo":"bar"}`,
			patch: `[{"op":"add","path":"/baz","value":"qux","xyz":123}]`, want: `{"foo":"bar","baz":"qux"}`},
		{name: "A.12 adding to a nonexistent target", doc: `{"foo":"bar"}`,
			patch: `[{"op":"add","path":"/baz/bat","value":"qux"}]`, fails: true},
		{name: "A.14 ~ escape ordering", doc: `{"/":9,"~1":10}`,
			patch: `[{"op":"test","path":"/~01","value":10}]`, want: `{"/":9,"~1":10}`},
		{name: "A.15 comparing strings and numbers", doc: `{"/":9,"~1":10}`,
			patch: `[{"op":"test","path":"/~01","value":"10"}]`, testFailed: true},
		{name: "A.16 adding an array value", doc: `{"foo":["bar"]}`,
			patch: `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`, want: `{"foo":["bar",["abc","def"]]}`},

		// The text of the RFC beyond the appendix.
		{name: "add replaces an existing member", doc: `{"a":1}`, patch: `[{"op":"add","path":"/a","value":2}]`, want: `{"a":2}`},
		{name: "add at the root replaces the document", doc: `{"a":1}`, patch: `[{"op":"add","path":"","value":[1]}]`, want: `[1]`},
		{name: "add at index = length appends", doc: `[1,2]`, patch: `[{"op":"add","path":"/2","value":3}]`, want: `[1,2,3]`},
		{name: "add past the end fails", doc: `[1,2]`, patch: `[{"op":"add","path":"/3","value":3}]`, fails: true},
		{name: "leading zero is not an index", doc: `[1,2]`, patch: `[{"op":"add","path":"/01","value":3}]`, fails: true},
		{name: "negative index fails", doc: `[1,2]`, patch: `[{"op":"remove","path":"/-1"}]`, fails: true},
		{name: "dash cannot be removed", doc: `[1,2]`, patch: `[{"op":"remove","path":"/-"}]`, fails: true},
		{name: "remove a missing member fails", doc: `{"a":1}`, patch: `[{"op":"remove","path":"/b"}]`, fails: true},
		{name: "replace a missing member fails", doc: `{"a":1}`, patch: `[{"op":"replace","path":"/b","value":1}]`, fails: true},
		{name: "replace the root", doc: `{"a":1}`, patch: `[{"op":"replace","path":"","value":"x"}]`, want: `"x"`},
		{name: "value null is a value", doc: `{"a":1}`, patch: `[{"op":"replace","path":"/a","value":null}]`, want: `{"a":null}`},
		{name: "missing value fails", doc: `{"a":1}`, patch: `[{"op":"replace","path":"/a"}]`, fails: true},
		{name: "missing path fails", doc: `{"a":1}`, patch: `[{"op":"remove"}]`, fails: true},
		{name: "unknown op fails", doc: `{"a":1}`, patch: `[{"op":"merge","path":"/a","value":1}]`, fails: true},
		{name: "pointer without slash fails", doc: `{"a":1}`, patch: `[{"op":"remove","path":"a"}]`, fails: true},
		{name: "bad escape fails", doc: `{"a~":1}`, patch: `[{"op":"remove","path":"/a~"}]`, fails: true},
		{name: "~1 is a slash", doc: `{"a/b":1}`, patch: `[{"op":"remove","path":"/a~1b"}]`, want: `{}`},
		{name: "~0 is a tilde", doc: `{"m~n":1}`, patch: `[{"op":"replace","path":"/m~0n","value":2}]`, want: `{"m~n":2}`},
		{name: "empty member name", doc: `{"":1}`, patch: `[{"op":"replace","path":"/","value":2}]`, want: `{"":2}`},
		{name: "copy deep-copies", doc: `{"a":{"b":1}}`,
			patch: `[{"op":"copy","from":"/a","path":"/c"},{"op":"replace","path":"/c/b","value":2}]`, want: `{"a":{"b":1},"c":{"b":2}}`},
		{name: "move into its own child fails", doc: `{"a":{"b":1}}`, patch: `[{"op":"move","from":"/a","path":"/a/c"}]`, fails: true},
		{name: "move to itself is a no-op", doc: `{"a":1}`, patch: `[{"op":"move","from":"/a","path":"/a"}]`, want: `{"a":1}`},
		{name: "move from a missing member fails", doc: `{"a":1}`, patch: `[{"op":"move","from":"/b","path":"/c"}]`, fails: true},
		{name: "test numbers by value", doc: `{"a":1.0}`, patch: `[{"op":"test","path":"/a","value":1}]`, want: `{"a":1}`},
		{name: "test objects whatever the member order", doc: `{"a":{"x":1,"y":[true,null]}}`,
			patch: `[{"op":"test","path":"/a","value":{"y":[true,null],"x":1}}]`, want: `{"a":{"x":1,"y":[true,null]}}`},
		{name: "test arrays in order", doc: `{"a":[1,2]}`, patch: `[{"op":"test","path":"/a","value":[2,1]}]`, testFailed: true},
		{name: "test a missing member fails (not a failed test)", doc: `{}`, patch: `[{"op":"test","path":"/a","value":null}]`, fails: true},
		{name: "patch must be an array", doc: `{}`, patch: `{"op":"add","path":"/a","value":1}`, fails: true},
		{name: "empty patch changes nothing", doc: `{"a":1}`, patch: `[]`, want: `{"a":1}`},
		{name: "later operation failing undoes nothing partially", doc: `{"a":1}`,
			patch: `[{"op":"replace","path":"/a","value":2},{"op":"remove","path":"/zzz"}]`, fails: true},
		{name: "huge exponents compare without exploding", doc: `{"a":1e999999999}`,
			patch: `[{"op":"test","path":"/a","value":2e999999999}]`, want: `{"a":1e999999999}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply([]byte(tt.doc), []byte(tt.patch))
			var pe *Error
			switch {
			case tt.testFailed || tt.fails:
				if err == nil {
					t.Fatalf("Apply = %s, want an error", got)
				}
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is %T, want *Error", err, err)
				}
				if pe.TestFailed != tt.testFailed {
					t.Errorf("TestFailed = %t, want %t (%v)", pe.TestFailed, tt.testFailed, err)
				}
			case err != nil:
				t.Fatalf("Apply: %v", err)
			case !jsonEqual(t, string(got), tt.want):
				t.Errorf("Apply = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestErrorNamesTheOperation(t *testing.T) {
	_, err := Apply([]byte(`{"a":[1]}`), []byte(`[{"op":"test","path":"/a/0","value":1},{"op":"remove","path":"/a/4"}]`))
	want := "json patch operation 1 (remove /a/4): array index 4 is out of range (length 1)"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestOperationJSON(t *testing.T) {
	p := Patch{
		{Op: OpTest, Path: "/treatments/0/keys/2", Value: "a<b"},
		{Op: OpRemove, Path: "/treatments/0/keys/2", Value: "ignored"},
		{Op: OpAdd, Path: "/x", Value: nil},
		{Op: OpMove, From: "/a", Path: "/b"},
	}
	want := `[{"op":"test","path":"/treatments/0/keys/2","value":"a<b"},{"op":"remove","path":"/treatments/0/keys/2"},{"op":"add","path":"/x","value":null},{"op":"move","path":"/b","from":"/a"}]`
	if got := string(p.JSON()); got != want {
		t.Errorf("JSON =\n%s\nwant\n%s", got, want)
	}
	if got := string(Patch(nil).JSON()); got != "[]" {
		t.Errorf("nil patch = %s, want []", got)
	}
	var back []map[string]any
	if err := json.Unmarshal(p.JSON(), &back); err != nil {
		t.Fatal(err)
	}
}

func TestPointer(t *testing.T) {
	if got := Pointer("treatments", 0, "a/b~c"); got != "/treatments/0/a~1b~0c" {
		t.Errorf("Pointer = %q", got)
	}
	toks, err := ParsePointer("/treatments/0/a~1b~0c")
	if err != nil || len(toks) != 3 || toks[2] != "a/b~c" {
		t.Errorf("ParsePointer = %q, %v", toks, err)
	}
	if toks, err := ParsePointer(""); err != nil || toks != nil {
		t.Errorf("ParsePointer(\"\") = %q, %v", toks, err)
	}
}
