package kload

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	"github.com/flagsync/flagsync/schema"
)

// kitchenSink is a valid flag file that writes every field the schema has, so that
// mutating it line by line reaches every constraint of the fast path.
const kitchenSink = `# every field
siteCode: pzllysfw2f
featureKey: kitchen_sink
name: Kitchen sink
description: Every field of the schema.
tags: [a, b]
attributionWindow: 604800000
bucketingKey:
  bucketingKeyType: CUSTOM_DATA
  customDataId: 12
primaryGoalId: 400899
secondaryGoalIds: [1, 2]
variables:
  - {key: color, type: STRING, value: blue}
  - {key: limit, type: NUMBER, value: 10}
  - {key: enabled, type: BOOLEAN, value: true}
  - {key: config, type: JSON, value: '{"a": 1}'}
  - key: size
    type: ENUM
    value: small
    allowedValues: [small, large]
variations:
  - key: off
    name: Off
  - key: on
    name: On
    variables:
      - {key: color, value: green}
      - {key: size, value: large}
environments:
  development:
    featureEnabled: true
    defaultVariationKey: on
    integrations:
      deliveryRules: [{name: x, weight: 1.5, tags: [a, null]}]
      experimentRules: []
  staging:
    featureEnabled: false
    defaultVariationKey: off
    rolloutRules:
      - name: ramp up
        type: PROGRESSIVE_DELIVERY
        exposition: 50
        variationKey: on
        state: ACTIVE
        segmentId: 5
        release: {releaseFrom: 2025-12-11T11:58:01, releaseTo: 2025-12-13T11:58, timeZone: Europe/Paris}
  production:
    featureEnabled: true
    defaultVariationKey: off
    rolloutRules:
      - name: beta testers
        type: TARGETED_DELIVERY
        segmentId: 403694
        exposition: 59.5
        variationKey: on
        rollbackConditions:
          - target: RULE
            criteria: CONVERSION_RATE
            comparisonOperator: GREATER_THAN
            matchValue: 20
            goalId: 400899
            visitors: 2
            recipients: [a@example.com, b@example.com]
      - name: experiment
        type: EXPERIMENTATION
        controlVariationKey: off
        trafficAllocationMethod: MANUAL
        reallocation: true
        trafficAllocations:
          - {variationKey: off, exposition: 33.33}
          - {variationKey: on, exposition: 66.67}
archived: false
ignore:
  - tags
  - environments.*.rolloutRules[*].exposition
owner: team-checkout
expires: 2026-06-30
permanent: false
`

// minimalRules is a valid flag file whose rules write few fields, and a false
// reallocation: changing a rule's type reaches the checks of which fields a type takes,
// which count a field written with a false or empty value.
const minimalRules = `featureKey: minimal
name: Minimal
variations: [{key: off}, {key: on}]
environments:
  production:
    defaultVariationKey: off
    rolloutRules:
      - {name: a, type: TARGETED_DELIVERY, variationKey: on}
      - {name: b, type: PROGRESSIVE_DELIVERY, variationKey: on, exposition: 0}
      - {name: c, type: EXPERIMENTATION, trafficAllocations: [{variationKey: on, exposition: 100}], reallocation: false}
`

// replacements are values a mutation writes in place of a value: boundaries of every
// constraint of the schema, YAML's traps, and the values of the enums.
var replacements = []string{
	"0", "1", "-1", "2", "100", "101", "100.0", "99.99", "-0", "0.5", "1e2", "1e30", "-1e30", "2147483647", "2147483648",
	"9007199254740991", "9007199254740992", "18446744073709551616", "0x10", "0o17", "017", "1_000", ".inf", "-.inf", ".nan",
	"true", "false", "True", "yes", "on", "off", "null", "~", "", `""`, `"x"`, "x", "'10'", "[]", "{}", "[a, a]", "[a, b]",
	"[1, 2]", "[1, 1]", "[1, 1.0]", "{a: 1}", "[{a: 1}]", "2024-01-01", "2025-12-11T11:58:01", "2025-12-11T11:58",
	"2025-12-11T11:58:01.5Z", "2025-12-11T11:58:01+02:00", "2025-13-40T11:58:01", "2026-02-30", "2026-13-01", "'2026-06-30'", "Europe/Paris", "Local", "UTC",
	"Mars/Olympus", "!!str 5", "!!int 5", "!!binary aGk=", "&a x", "*a", "ENUM", "BOOLEAN", "NUMBER", "JSON", "STRING",
	"CUSTOM_DATA", "VISITOR_CODE", "ACTIVE", "PAUSED", "EXPERIMENTATION", "TARGETED_DELIVERY", "PROGRESSIVE_DELIVERY",
	"MANUAL", "RULE", "UPLIFT", "LESS_THAN", "a@b.co", "not-an-email", "[a@b.co, a@b.co]", "small", "medium", "green",
	"pzllysfw2", "pzllysfw2f", "pzllysfw2fx", "éééééééééé", "ééééééééé", "ééééé", "Upper_Key", "new-key", "a b",
	"a.b", "[not-an-email]", "[a@b.co, not-an-email]", "[a@b.co, b@b.co]", "Europe//Paris", "+01:00", "[x, '']", "['']",
	strings.Repeat("n", 100), strings.Repeat("n", 101), strings.Repeat("k", 255), strings.Repeat("k", 256),
	strings.Repeat("é", 100), strings.Repeat("é", 101), strings.Repeat("d", 5000), strings.Repeat("d", 5001), `'{"a": 1}'`, `'{"a": }'`, "'[1, 2]'",
}

// mutants returns variations of a valid file: lines and blocks (a line and the lines
// indented below it) deleted and doubled, lines re-indented, keys misspelt, unknown keys
// added, and values replaced: each value by every replacement when all, else by a dozen
// picked by rng.
func mutants(data string, rng *rand.Rand, all bool) []string {
	lines := strings.Split(strings.TrimSuffix(data, "\n"), "\n")
	join := func(ls []string) string { return strings.Join(ls, "\n") + "\n" }
	with := func(i, n int, repl ...string) string {
		out := append(append(append([]string{}, lines[:i]...), repl...), lines[i+n:]...)
		return join(out)
	}
	indentOf := func(l string) int { return len(l) - len(strings.TrimLeft(l, " -")) }
	var out []string
	for i, line := range lines {
		block := 1
		for i+block < len(lines) && indentOf(lines[i+block]) > indentOf(line) {
			block++
		}
		out = append(out, with(i, 1), with(i, 1, line, line), with(i, 1, "  "+line), with(i, block),
			with(i, block, append(slices.Clone(lines[i:i+block]), lines[i:i+block]...)...))
		if strings.HasPrefix(line, "  ") {
			out = append(out, with(i, 1, line[2:]))
		}
		indent := line[:indentOf(line)]
		out = append(out, with(i, 1, line, strings.ReplaceAll(indent, "-", " ")+"unknownField: 1"))
		// Each "key: value" of the line, in block or flow style, and a list item's value.
		pick := func() []int {
			if all {
				return rng.Perm(len(replacements))
			}
			return rng.Perm(len(replacements))[:12]
		}
		if item := strings.TrimLeft(line, " "); strings.HasPrefix(item, "- ") && !strings.Contains(item, ": ") {
			for _, r := range pick() {
				out = append(out, with(i, 1, line[:len(line)-len(item)]+"- "+replacements[r]))
			}
		}
		if strings.HasSuffix(line, ":") && block > 1 {
			for _, r := range pick() {
				out = append(out, with(i, block, line+" "+replacements[r]))
			}
			// The key of a block: an environment's name, say.
			keyStart := len(line) - len(strings.TrimLeft(line, " -"))
			for _, k := range []string{strings.Repeat("e", 255), strings.Repeat("e", 256), "Upper_Key", "a.b", "a b", "é", "''"} {
				out = append(out, with(i, 1, line[:keyStart]+k+":"))
			}
		}
		for at := 0; ; {
			j := strings.Index(line[at:], ": ")
			if j < 0 {
				break
			}
			j += at
			start := j + 2
			end := len(line)
			if strings.Contains(line[:start], "{") {
				end = start + flowValueEnd(line[start:])
			}
			keyStart := strings.LastIndexAny(line[:j], " {,") + 1
			if key := line[keyStart:j]; len(key) > 1 {
				out = append(out, with(i, 1, line[:keyStart]+key[1:]+line[j:]))
				for _, k := range []string{strings.Repeat("e", 255), strings.Repeat("e", 256), "Upper_Key", "a.b", "a b", "é", "'x'", `"x"`} {
					out = append(out, with(i, 1, line[:keyStart]+k+line[j:]))
				}
			}
			for _, r := range pick() {
				out = append(out, with(i, 1, line[:start]+replacements[r]+line[end:]))
			}
			at = start
		}
	}
	for _, top := range []string{"!!map\n", "&root\n", "--- !!map\n", "---\n", "--- &a\n", "%YAML 1.1\n---\n"} {
		out = append(out, top+data)
	}
	return out
}

// flowValueEnd returns the length of the value a flow collection's entry starts with:
// up to the next ',' or '}' outside brackets and quotes.
func flowValueEnd(s string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '[' || c == '{':
			depth++
		case (c == ']' || c == '}') && depth > 0:
			depth--
		case (c == ',' || c == '}') && depth == 0:
			return i
		}
	}
	return len(s)
}

// fastCorpus gathers the inputs of the equivalence tests: the fuzz corpus, every
// fixture, the examples, the benchmark's flags, and, when withMutants, mutations of the
// valid ones.
func fastCorpus(t testing.TB, withMutants bool) map[string][]byte {
	t.Helper()
	inputs := map[string][]byte{}
	corpus, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzLoad", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range corpus {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		v, err := fuzzCorpusValue(data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		inputs["fuzz/"+filepath.Base(p)] = v
	}
	for _, root := range []string{filepath.Join("testdata", "invalid"), filepath.Join("..", "..", "..", "examples", "flags")} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml") || slices.Contains(flagrepo.SettingsNames, d.Name()) {
				return err
			}
			data, err := os.ReadFile(p)
			inputs[filepath.ToSlash(p)] = data
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	valid := []string{fmt.Sprintf(benchFlag, "pzllysfw2f", 7, 7, 7, 7)}
	for name, data := range inputs {
		if strings.Contains(name, "examples") {
			valid = append(valid, string(data))
		}
	}
	sort.Strings(valid)
	rng := rand.New(rand.NewPCG(18, 2026))
	tiny := "featureKey: tiny\nname: Tiny\nvariations: [{key: on}]\n"
	for i, v := range append([]string{kitchenSink, minimalRules, tiny}, valid...) {
		inputs[fmt.Sprintf("valid/%d", i)] = []byte(v)
		if !withMutants {
			continue
		}
		for j, m := range mutants(v, rng, i < 3) {
			inputs[fmt.Sprintf("mutant/%d/%d", i, j)] = []byte(m)
		}
	}
	return inputs
}

// fuzzCorpusValue reads the one []byte value of a Go fuzz corpus file.
func fuzzCorpusValue(data []byte) ([]byte, error) {
	lines := strings.SplitN(string(data), "\n", 3)
	if len(lines) < 2 || lines[0] != "go test fuzz v1" {
		return nil, errors.New("not a fuzz corpus file")
	}
	v := strings.TrimSpace(lines[1])
	if !strings.HasPrefix(v, "[]byte(") || !strings.HasSuffix(v, ")") {
		return nil, fmt.Errorf("want one []byte value, got %.40s", v)
	}
	s, err := strconv.Unquote(v[len("[]byte(") : len(v)-1])
	return []byte(s), err
}

// agree checks one input on both paths: the fast path accepts it exactly when the
// schema path finds no problem in it, and then both give the same entry.
func agree(t testing.TB, sch *schemas, name string, data []byte) (valid bool) {
	t.Helper()
	se, err := analyseSchema(name, data, sch)
	if err != nil {
		t.Fatalf("%s: schema path: %v", name, err)
	}
	fe, fast := analyseFast(data)
	schemaValid := se.Parsed && len(se.Diags) == 0
	switch {
	case fast && !schemaValid:
		t.Errorf("%s: the fast path accepts what the schema path rejects (%v):\n%s", name, se.Diags, data)
	case !fast && schemaValid:
		t.Errorf("%s: the fast path rejects what the schema path accepts:\n%s", name, data)
	case fast && !reflect.DeepEqual(fe, se):
		t.Errorf("%s: the paths read the file differently:\nfast   %+v\nschema %+v\n%s", name, fe, se, data)
	}
	return schemaValid
}

// TestFastPathAgreesWithSchemaPath is the proof that the fast path changes nothing: on
// every input of the fuzz corpus, every fixture and example, and mutations of valid
// files that reach each constraint of the schema, the fast path accepts exactly what the
// schema path accepts and reads it the same; and whole loads give the same flags, or the
// same diagnostics (which the schema path writes), either way.
func TestFastPathAgreesWithSchemaPath(t *testing.T) {
	sch, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	inputs := fastCorpus(t, true)
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	var valid, invalid []string
	for _, n := range names {
		if agree(t, sch, n, inputs[n]) {
			valid = append(valid, n)
		} else {
			invalid = append(invalid, n)
		}
	}
	t.Logf("%d inputs: %d valid, %d invalid", len(names), len(valid), len(invalid))
	if len(valid) < 500 || len(invalid) < 2000 {
		t.Fatalf("the corpus does not exercise both verdicts: %d valid, %d invalid", len(valid), len(invalid))
	}

	// Whole loads: the valid files alone (flags compared), then with every tenth invalid
	// file (diagnostics compared; agree has compared every file's verdict).
	load := func(files []string, schemaFirst bool) (any, Stats) {
		fsys := fstest.MapFS{"flagsync.yaml": {Data: []byte(standardSettings)}}
		for i, n := range files {
			fsys[fmt.Sprintf("f/%05d.yaml", i)] = &fstest.MapFile{Data: inputs[n]}
		}
		var st Stats
		d, err := LoadWith(fsys, ".", Options{SchemaFirst: schemaFirst, Stats: &st})
		if err != nil {
			return err.Error(), st
		}
		return d, st
	}
	mixed := slices.Clone(valid)
	for i := 0; i < len(invalid); i += 10 {
		mixed = append(mixed, invalid[i])
	}
	for _, files := range [][]string{valid, mixed} {
		fast, fs := load(files, false)
		slow, ss := load(files, true)
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("loading %d files: the paths differ", len(files))
		}
		if fs.Fast+fs.Schema != len(files) || ss.Schema != len(files) || fs.Fast < len(valid) {
			t.Errorf("loading %d files: stats fast path %+v, schema path %+v", len(files), fs, ss)
		}
	}
}

// FuzzFastPath looks for a file the two paths disagree on, from the fuzz corpus, the
// fixtures and the valid files (the mutants are TestFastPathAgreesWithSchemaPath's).
func FuzzFastPath(f *testing.F) {
	for _, data := range fastCorpus(f, false) {
		f.Add(data)
	}
	sch, err := loadSchemas()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) { agree(t, sch, "f.yaml", data) })
}

// TestFastPathKnowsTheSchema fails when the constraints of schema/flag.schema.json
// change: fast.go states them in Go and must be changed with them (then update the
// hash). Annotations (titles, descriptions, $id, examples) do not count.
func TestFastPathKnowsTheSchema(t *testing.T) {
	var doc any
	if err := json.Unmarshal(schema.Flag(), &doc); err != nil {
		t.Fatal(err)
	}
	constraints, err := json.Marshal(withoutAnnotations(doc)) // map keys sorted: a canonical form
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(constraints)
	const reviewed = "d8d73a16afd32118a252afb6b89d6581bca42d000a80a733c8ff2dbc33d76d4d"
	if got := hex.EncodeToString(sum[:]); got != reviewed {
		t.Fatalf("the constraints of flag.schema.json changed (hash %s): check that fast.go states every one of them, "+
			"that TestFastPathAgreesWithSchemaPath's kitchen sink and replacements reach the new ones, then set reviewed to the new hash", got)
	}
	// The hash does follow a constraint.
	changed := strings.Replace(string(schema.Flag()), `"maxLength": 100`, `"maxLength": 101`, 1)
	var other any
	if err := json.Unmarshal([]byte(changed), &other); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(withoutAnnotations(other)); string(b) == string(constraints) {
		t.Error("a changed maxLength leaves the hash alone")
	}
}

// withoutAnnotations returns a JSON Schema without the keywords that validate nothing.
// Names under properties (a property may be called "description") are kept.
func withoutAnnotations(schema any) any {
	m, ok := schema.(map[string]any)
	if !ok {
		return schema
	}
	out := map[string]any{}
	for k, v := range m {
		switch k {
		case "$id", "$comment", "title", "description", "examples", "default", "deprecated", "readOnly", "writeOnly":
			continue
		case "properties", "patternProperties", "$defs", "dependentSchemas":
			props, _ := v.(map[string]any)
			sub := map[string]any{}
			for name, s := range props {
				sub[name] = withoutAnnotations(s)
			}
			out[k] = sub
		case "allOf", "anyOf", "oneOf", "prefixItems":
			list, _ := v.([]any)
			sub := make([]any, len(list))
			for i, s := range list {
				sub[i] = withoutAnnotations(s)
			}
			out[k] = sub
		case "enum", "const", "required", "type", "pattern", "format":
			out[k] = v
		default:
			out[k] = withoutAnnotations(v) // a subschema (items, if, then...) or a number
		}
	}
	return out
}

// TestFastPathTakesValidFiles checks that the fast path does take the files it is for:
// the examples and the benchmark's flags load without the schema path.
func TestFastPathTakesValidFiles(t *testing.T) {
	var st Stats
	if _, err := LoadWith(os.DirFS(filepath.Join("..", "..", "..", "examples")), "flags", Options{Stats: &st}); err != nil {
		t.Fatal(err)
	}
	if st.Schema != 0 || st.Fast != st.Files || st.Files < 5 {
		t.Errorf("examples: %+v, want every file on the fast path", st)
	}
	st = Stats{}
	if _, err := LoadWith(benchRepo(50), "flags", Options{Stats: &st}); err != nil {
		t.Fatal(err)
	}
	if st.Schema != 0 || st.Fast != 50 {
		t.Errorf("benchmark flags: %+v, want every file on the fast path", st)
	}
	var inv *diag.InvalidError
	st = Stats{}
	_, err := LoadWith(fstest.MapFS{"a.yaml": {Data: []byte("featureKey: a\nname: A\nvariations: [{key: on}]\nsiteCode: x\n")}}, ".", Options{Stats: &st})
	if !errors.As(err, &inv) || st.Schema != 1 || st.Fast != 0 {
		t.Errorf("invalid file: err %v, stats %+v; want the schema path's diagnostics", err, st)
	}
}
