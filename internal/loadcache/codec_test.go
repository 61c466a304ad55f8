package loadcache

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

type codecInner struct {
	Name  string
	Score *float64
	Tags  []string
}

type codecSample struct {
	B     bool
	I     int
	I8    int8
	I64   int64
	U     uint
	U16   uint16
	F     float64
	F32   float32
	S     string
	P     *codecInner
	NilP  *codecInner
	List  []codecInner
	Nil   []string
	Empty []string
	Arr   [2]int
	M     map[string]codecInner
	NilM  map[string]int
	EmpM  map[string]int
	IntM  map[int64]string
	Any   []any
	One   any
	None  any
}

func sample() codecSample {
	score := 59.5
	return codecSample{
		B: true, I: -7, I8: -128, I64: math.MaxInt64, U: 7, U16: 65535, F: -1.25e300, F32: 1.5, S: "héllo wörld",
		P:     &codecInner{Name: "p", Score: &score, Tags: []string{"a", ""}},
		List:  []codecInner{{Name: "x"}, {Name: "", Tags: []string{}}},
		Empty: []string{},
		Arr:   [2]int{1, -1},
		M:     map[string]codecInner{"production": {Name: "prod"}, "": {}},
		EmpM:  map[string]int{},
		IntM:  map[int64]string{-1: "minus", 3: "three"},
		Any: []any{nil, true, false, 1.5, "s", []any{}, []any(nil), map[string]any{"k": []any{1.0, map[string]any{}}},
			map[string]any(nil)},
		One: map[string]any{"a": "b"},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	c, err := NewCodec[codecSample]()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []codecSample{{}, sample()} {
		b, err := c.Encode(&v)
		if err != nil {
			t.Fatal(err)
		}
		var back codecSample
		if err := c.Decode(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, back) {
			t.Errorf("round trip:\ngot  %#v\nwant %#v", back, v)
		}
		again, _ := c.Encode(&back)
		if string(again) != string(b) {
			t.Error("the same value encodes to other bytes")
		}
	}
}

// TestCodecDamage checks that any truncation and any changed byte of an encoding gives
// an error or a value, never a panic, and that truncations are always errors.
func TestCodecDamage(t *testing.T) {
	c, err := NewCodec[codecSample]()
	if err != nil {
		t.Fatal(err)
	}
	v := sample()
	b, err := c.Encode(&v)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(b) {
		var back codecSample
		if err := c.Decode(b[:n], &back); err == nil {
			t.Fatalf("decoding the first %d of %d bytes succeeded", n, len(b))
		}
	}
	if err := c.Decode(append(append([]byte{}, b...), 0), new(codecSample)); err == nil {
		t.Error("trailing byte accepted")
	}
	for i := range b {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			d := append([]byte{}, b...)
			d[i] ^= x
			var back codecSample
			_ = c.Decode(d, &back) // must not panic
		}
	}
}

func FuzzCodecDecode(f *testing.F) {
	c, err := NewCodec[codecSample]()
	if err != nil {
		f.Fatal(err)
	}
	v := sample()
	b, _ := c.Encode(&v)
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var back codecSample
		if err := c.Decode(data, &back); err == nil {
			// What decodes encodes back to the same bytes: nothing is read loosely.
			if again, err := c.Encode(&back); err != nil || string(again) != string(data) {
				t.Fatalf("decoded %x, which encodes to %x (%v)", data, again, err)
			}
		}
	})
}

func TestCodecRefusesWhatItCannotEncode(t *testing.T) {
	type recursive struct{ Next *recursive }
	type hidden struct {
		Shown int
		x     int
	}
	type withFunc struct{ F func() }
	type withIface struct{ E error }
	type floatKeys struct{ M map[float64]int }
	_ = hidden{}.x
	for name, err := range map[string]error{
		"recursive":  second(NewCodec[recursive]()),
		"unexported": second(NewCodec[hidden]()),
		"func":       second(NewCodec[withFunc]()),
		"interface":  second(NewCodec[withIface]()),
		"float keys": second(NewCodec[floatKeys]()),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c, err := NewCodec[struct{ A any }]()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encode(&struct{ A any }{A: 3}); err == nil || !strings.Contains(err.Error(), "only JSON values") {
		t.Errorf("an int in an interface: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestFingerprintFollowsTheShape(t *testing.T) {
	type a struct{ X, Y string }
	type b struct{ X, Z string }
	type c struct{ Y, X string }
	type d struct {
		X string
		Y int
	}
	fp := func(f string, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	seen := map[string]string{}
	for name, f := range map[string]string{
		"a": fp(fingerprint[a]()), "b": fp(fingerprint[b]()), "c": fp(fingerprint[c]()), "d": fp(fingerprint[d]()),
	} {
		if other, dup := seen[f]; dup {
			t.Errorf("%s and %s have the same fingerprint", name, other)
		}
		seen[f] = name
	}
	first := fp(fingerprint[a]())
	if again := fp(fingerprint[a]()); again != first {
		t.Errorf("fingerprint not stable: %s, then %s", first, again)
	}
}

func fingerprint[T any]() (string, error) {
	c, err := NewCodec[T]()
	if err != nil {
		return "", err
	}
	return c.Fingerprint(), nil
}
