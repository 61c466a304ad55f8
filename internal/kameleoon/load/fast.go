package kload

import (
	"regexp"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/diag"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// The fast path decodes a flag file from its yaml.Node tree straight into the model,
// checking on the way every constraint of schema/flag.schema.json, then runs the
// semantic checks in Go. It never writes a diagnostic: at the first thing that is not
// plainly valid it gives the file up, and the schema path (YAML to JSON values, the JSON
// Schema validator, the decoding) loads it again and says what is wrong. So the schema
// stays the contract, and the fast path must accept exactly the files the schema path
// accepts, decoded the same: TestFastPathAgreesWithSchemaPath checks it over the fuzz
// corpus, the fixtures and thousands of mutations of valid files, and
// TestFastPathKnowsTheSchema fails when the schema changes, so that this file is
// reviewed with it.
//
// Every constraint below is the schema's, at the schema path's semantics: lengths count
// characters (code points), numbers are read as diag reads them, enums compare strings,
// patterns are the schema's regular expressions, the email format is the validator's.

// analyseFast loads one flag file on the fast path. It returns false when the file must
// take the schema path.
func analyseFast(data []byte) (fileEntry, bool) {
	root := diag.ParseRoot(data)
	if root == nil || !diag.Plain(root) {
		return fileEntry{}, false
	}
	var d fastDecoder
	f, ok := d.flag(root)
	if !ok {
		return fileEntry{}, false
	}
	c := checker{written: func(env string, rule int) ruleFields { return d.rules[env][rule] }}
	c.flag(&f)
	if c.failed {
		return fileEntry{}, false
	}
	e := fileEntry{Flag: f, Parsed: true, RootLine: root.Line, RootColumn: root.Column, SiteCodeOK: true,
		Key: entryKey{Found: true, OK: true, Line: d.keyValue.Line, Column: d.keyValue.Column, KeyLine: d.key.Line}}
	if len(f.Environments) > 0 {
		e.Envs = make([]entryEnv, 0, len(f.Environments))
		for _, ek := range f.EnvironmentKeys() {
			k := d.envKeys[ek]
			e.Envs = append(e.Envs, entryEnv{Key: ek, Line: k.Line, Column: k.Column})
		}
	}
	e.stowEnvironments()
	return e, true
}

// fastDecoder decodes one flag file and keeps what the checks and the entry need
// beyond the flag: positions and the fields each rule has written.
type fastDecoder struct {
	key, keyValue *yaml.Node
	envKeys       map[string]*yaml.Node
	rules         map[string][]ruleFields // per environment, per rule: the fields written
}

// fields is a decoder of one mapping's keys: each key must be one of names, once.
type fields struct {
	names []string
	seen  uint32
}

// take returns the index of key k among the mapping's field names, and false when k is
// not a plain string key, not a field, or a duplicate.
func (fs *fields) take(k *yaml.Node) (int, bool) {
	if !diag.PlainKey(k) {
		return 0, false
	}
	i := slices.Index(fs.names, k.Value)
	if i < 0 || fs.seen&(1<<i) != 0 {
		return 0, false
	}
	fs.seen |= 1 << i
	return i, true
}

// has reports whether field i was written.
func (fs *fields) has(i int) bool { return fs.seen&(1<<i) != 0 }

var flagFieldNames = []string{"siteCode", "featureKey", "name", "description", "tags", "attributionWindow", "bucketingKey",
	"primaryGoalId", "secondaryGoalIds", "variables", "variations", "environments", "archived", "ignore",
	"owner", "expires", "permanent"}

const (
	maxInt32 = 2147483647
	maxSafe  = 9007199254740991 // 2^53 - 1, the schema's maximum for counts and durations
)

func (d *fastDecoder) flag(root *yaml.Node) (f kmodel.Flag, ok bool) {
	fs := fields{names: flagFieldNames}
	c := root.Content
	for i := 0; i+1 < len(c); i += 2 {
		k, v := c[i], c[i+1]
		field, ok := fs.take(k)
		if !ok {
			return f, false
		}
		switch flagFieldNames[field] {
		case "siteCode":
			f.SiteCode, ok = str(v, 10, 10)
		case "featureKey":
			d.key, d.keyValue = k, v
			f.FeatureKey, ok = str(v, 0, 255)
			ok = ok && keyPattern(f.FeatureKey, false)
		case "name":
			f.Name, ok = str(v, 1, 100)
		case "description":
			f.Description, ok = str(v, 0, 5000)
		case "tags":
			f.Tags, ok = stringList(v, 0, 1, 255, true, nil)
		case "attributionWindow":
			f.AttributionWindow, ok = integer(v, 0, maxSafe)
		case "bucketingKey":
			f.BucketingKey, ok = bucketingKey(v)
		case "primaryGoalId":
			f.PrimaryGoalID, ok = integer(v, 1, maxInt32)
		case "secondaryGoalIds":
			f.SecondaryGoalIDs, ok = goalIDs(v)
		case "variables":
			f.Variables, ok = variables(v)
		case "variations":
			f.Variations, ok = variations(v)
		case "environments":
			f.Environments, ok = d.environments(v)
		case "archived":
			f.Archived, ok = diag.Bool(v)
		case "ignore":
			f.Ignore, ok = stringList(v, 0, 1, -1, true, nil)
		case "owner", "expires", "permanent":
			ok = metadata(&f, flagFieldNames[field], v)
		}
		if !ok {
			return f, false
		}
	}
	// Required: featureKey, name, variations.
	return f, fs.has(1) && fs.has(2) && fs.has(10)
}

// metadata decodes one of flagsync's own fields of a flag file (owner, expires,
// permanent), which are never sent to Kameleoon.
func metadata(f *kmodel.Flag, name string, v *yaml.Node) (ok bool) {
	switch name {
	case "owner":
		f.Owner, ok = str(v, 1, -1)
	case "expires":
		f.Expires, ok = str(v, 0, -1)
		ok = ok && expiresPattern.MatchString(f.Expires)
	case "permanent":
		f.Permanent, ok = diag.Bool(v)
	}
	return ok
}

// expiresPattern is the schema's pattern of expires: a date, YYYY-MM-DD.
var expiresPattern = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$`)

// str reads a string of min to max characters (max < 0: no maximum).
func str(n *yaml.Node, min, max int) (string, bool) {
	s, ok := diag.String(n)
	if !ok {
		return "", false
	}
	// A string has at most as many characters as bytes, and at least one when it has a
	// byte: count them only when that does not settle it.
	if min > 1 || max >= 0 && len(s) > max {
		l := utf8.RuneCountInString(s)
		return s, l >= min && (max < 0 || l <= max)
	}
	return s, len(s) >= min
}

// keyPattern reports whether s is 1 to 255 letters, digits, '_' or '-' (lower-case
// letters only unless upper): the schema's ^[a-z0-9_-]{1,255}$ for feature keys and
// ^[A-Za-z0-9_-]{1,255}$ for environment keys.
func keyPattern(s string, upper bool) bool {
	if len(s) < 1 || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-' || upper && b >= 'A' && b <= 'Z') {
			return false
		}
	}
	return true
}

// enum reads a string that must be one of values.
func enum(n *yaml.Node, values ...string) (string, bool) {
	s, ok := diag.String(n)
	return s, ok && slices.Contains(values, s)
}

// integer reads a whole number from min to max. Every integer field of the schema has
// bounds inside int64, so a number that does not parse as an int64 (a fraction, 1e30)
// is out of them.
func integer(n *yaml.Node, min, max int64) (int64, bool) {
	num, ok := diag.Number(n)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(num), 10, 64)
	return i, err == nil && i >= min && i <= max
}

// number reads a number, from 0 to 100 when percent. The JSON number diag makes is the
// shortest text of a float64 (or an exact integer), so comparing the float64 with the
// bounds gives what the validator's exact comparison gives.
func number(n *yaml.Node, percent bool) (float64, bool) {
	num, ok := diag.Number(n)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(num), 64)
	return f, err == nil && (!percent || f >= 0 && f <= 100)
}

// stringList reads a list of at least minItems strings of min to max characters each,
// without duplicates when unique, each passing check when it is not nil.
func stringList(n *yaml.Node, minItems, min, max int, unique bool, check func(string) bool) ([]string, bool) {
	if n.Kind != yaml.SequenceNode || !diag.Plain(n) || len(n.Content) < minItems {
		return nil, false
	}
	out := make([]string, len(n.Content))
	for i, item := range n.Content {
		s, ok := str(item, min, max)
		if !ok || check != nil && !check(s) {
			return nil, false
		}
		if unique && slices.Contains(out[:i], s) {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

func goalIDs(n *yaml.Node) ([]int64, bool) {
	if n.Kind != yaml.SequenceNode || !diag.Plain(n) {
		return nil, false
	}
	out := make([]int64, len(n.Content))
	for i, item := range n.Content {
		id, ok := integer(item, 1, maxInt32)
		if !ok || slices.Contains(out[:i], id) {
			return nil, false
		}
		out[i] = id
	}
	return out, true
}

func mapping(n *yaml.Node) bool  { return n.Kind == yaml.MappingNode && diag.Plain(n) }
func sequence(n *yaml.Node) bool { return n.Kind == yaml.SequenceNode && diag.Plain(n) }

func bucketingKey(n *yaml.Node) (*kmodel.BucketingKey, bool) {
	if !mapping(n) {
		return nil, false
	}
	var b kmodel.BucketingKey
	fs := fields{names: []string{"bucketingKeyType", "customDataId"}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		field, ok := fs.take(n.Content[i])
		if !ok {
			return nil, false
		}
		v := n.Content[i+1]
		if field == 0 {
			b.BucketingKeyType, ok = enum(v, "VISITOR_CODE", "CUSTOM_DATA")
		} else {
			b.CustomDataID, ok = integer(v, 1, maxInt32)
		}
		if !ok {
			return nil, false
		}
	}
	// Required bucketingKeyType; customDataId required with CUSTOM_DATA, not allowed
	// with VISITOR_CODE.
	if !fs.has(0) || fs.has(1) != (b.BucketingKeyType == "CUSTOM_DATA") {
		return nil, false
	}
	return &b, true
}

var variableFields = []string{"key", "type", "value", "allowedValues"}

func variables(n *yaml.Node) ([]kmodel.Variable, bool) {
	if !sequence(n) {
		return nil, false
	}
	out := make([]kmodel.Variable, len(n.Content))
	for i, item := range n.Content {
		if !mapping(item) {
			return nil, false
		}
		v := &out[i]
		fs := fields{names: variableFields}
		for j := 0; j+1 < len(item.Content); j += 2 {
			field, ok := fs.take(item.Content[j])
			if !ok {
				return nil, false
			}
			x := item.Content[j+1]
			switch field {
			case 0:
				v.Key, ok = str(x, 1, 255)
			case 1:
				v.Type, ok = enum(x, kmodel.TypeBoolean, kmodel.TypeNumber, kmodel.TypeString, kmodel.TypeJSON, kmodel.TypeJS, kmodel.TypeCSS, kmodel.TypeEnum)
			case 2:
				v.Value, ok = diag.Literal(x)
			case 3:
				v.AllowedValues, ok = stringList(x, 1, 0, -1, true, nil)
			}
			if !ok {
				return nil, false
			}
		}
		// Required key, type and value; allowedValues required for ENUM and not allowed
		// for other types.
		if !fs.has(0) || !fs.has(1) || !fs.has(2) || fs.has(3) != (v.Type == kmodel.TypeEnum) {
			return nil, false
		}
	}
	return out, true
}

func variations(n *yaml.Node) ([]kmodel.Variation, bool) {
	if !sequence(n) || len(n.Content) < 1 {
		return nil, false
	}
	out := make([]kmodel.Variation, len(n.Content))
	for i, item := range n.Content {
		if !mapping(item) {
			return nil, false
		}
		v := &out[i]
		fs := fields{names: []string{"key", "name", "variables"}}
		for j := 0; j+1 < len(item.Content); j += 2 {
			field, ok := fs.take(item.Content[j])
			if !ok {
				return nil, false
			}
			x := item.Content[j+1]
			switch field {
			case 0:
				v.Key, ok = str(x, 1, 255)
			case 1:
				v.Name, ok = str(x, 1, 255)
			case 2:
				v.Variables, ok = variationVariables(x)
			}
			if !ok {
				return nil, false
			}
		}
		if !fs.has(0) {
			return nil, false
		}
	}
	return out, true
}

func variationVariables(n *yaml.Node) ([]kmodel.VariationVariable, bool) {
	if !sequence(n) {
		return nil, false
	}
	out := make([]kmodel.VariationVariable, len(n.Content))
	for i, item := range n.Content {
		if !mapping(item) {
			return nil, false
		}
		fs := fields{names: []string{"key", "value"}}
		for j := 0; j+1 < len(item.Content); j += 2 {
			field, ok := fs.take(item.Content[j])
			if !ok {
				return nil, false
			}
			if field == 0 {
				out[i].Key, ok = str(item.Content[j+1], 1, 255)
			} else {
				out[i].Value, ok = diag.Literal(item.Content[j+1])
			}
			if !ok {
				return nil, false
			}
		}
		if !fs.has(0) || !fs.has(1) {
			return nil, false
		}
	}
	return out, true
}

func (d *fastDecoder) environments(n *yaml.Node) (map[string]kmodel.Environment, bool) {
	if !mapping(n) {
		return nil, false
	}
	out := make(map[string]kmodel.Environment, len(n.Content)/2)
	d.envKeys = make(map[string]*yaml.Node, len(n.Content)/2)
	d.rules = make(map[string][]ruleFields, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !diag.PlainKey(k) || !keyPattern(k.Value, true) {
			return nil, false
		}
		if _, dup := out[k.Value]; dup {
			return nil, false
		}
		env, ok := d.environment(k.Value, v)
		if !ok {
			return nil, false
		}
		out[k.Value] = env
		d.envKeys[k.Value] = k
	}
	return out, true
}

var environmentFields = []string{"featureEnabled", "defaultVariationKey", "rolloutRules", "integrations"}

func (d *fastDecoder) environment(key string, n *yaml.Node) (env kmodel.Environment, ok bool) {
	if !mapping(n) {
		return env, false
	}
	fs := fields{names: environmentFields}
	for i := 0; i+1 < len(n.Content); i += 2 {
		field, ok := fs.take(n.Content[i])
		if !ok {
			return env, false
		}
		v := n.Content[i+1]
		switch field {
		case 0:
			env.FeatureEnabled, ok = diag.Bool(v)
		case 1:
			env.DefaultVariationKey, ok = str(v, 1, 255)
		case 2:
			env.RolloutRules, ok = d.rolloutRules(key, v)
		case 3:
			env.Integrations, ok = integrations(v)
		}
		if !ok {
			return env, false
		}
	}
	return env, fs.has(1)
}

func integrations(n *yaml.Node) (*kmodel.Integrations, bool) {
	if !mapping(n) {
		return nil, false
	}
	var in kmodel.Integrations
	fs := fields{names: []string{"deliveryRules", "experimentRules"}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		field, ok := fs.take(n.Content[i])
		if !ok {
			return nil, false
		}
		list, ok := anyList(n.Content[i+1])
		if !ok {
			return nil, false
		}
		if field == 0 {
			in.DeliveryRules = list
		} else {
			in.ExperimentRules = list
		}
	}
	return &in, true
}

// anyList reads a list of any JSON values, as decoding into []any gives them.
func anyList(n *yaml.Node) ([]any, bool) {
	if !sequence(n) {
		return nil, false
	}
	out := make([]any, len(n.Content))
	for i, item := range n.Content {
		v, ok := diag.Value(item)
		if !ok {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

func (d *fastDecoder) rolloutRules(env string, n *yaml.Node) ([]kmodel.Rule, bool) {
	if !sequence(n) {
		return nil, false
	}
	out := make([]kmodel.Rule, len(n.Content))
	written := make([]ruleFields, len(n.Content))
	for i, item := range n.Content {
		var ok bool
		if written[i], ok = rule(item, &out[i]); !ok {
			return nil, false
		}
	}
	d.rules[env] = written
	return out, true
}

// rule decodes one rule into r and returns the fields written.
func rule(n *yaml.Node, r *kmodel.Rule) (ruleFields, bool) {
	if !mapping(n) {
		return 0, false
	}
	fs := fields{names: ruleFieldNames[:]}
	for i := 0; i+1 < len(n.Content); i += 2 {
		field, ok := fs.take(n.Content[i])
		if !ok {
			return 0, false
		}
		v := n.Content[i+1]
		switch ruleFieldNames[field] {
		case "name":
			r.Name, ok = str(v, 1, 100)
		case "type":
			r.Type, ok = enum(v, kmodel.RuleTargetedDelivery, kmodel.RuleProgressiveDelivery, kmodel.RuleExperimentation)
		case "state":
			r.State, ok = enum(v, kmodel.StateActive, kmodel.StatePaused)
		case "segmentId":
			r.SegmentID, ok = integer(v, 1, maxInt32)
		case "exposition":
			var x float64
			x, ok = number(v, true)
			r.Exposition = &x
		case "variationKey":
			r.VariationKey, ok = str(v, 1, 255)
		case "controlVariationKey":
			r.ControlVariationKey, ok = str(v, 1, 255)
		case "trafficAllocationMethod":
			r.TrafficAllocationMethod, ok = enum(v, "MANUAL", "MULTI_ARMED_BANDIT", "CONTEXTUAL_BANDIT")
		case "trafficAllocations":
			r.TrafficAllocations, ok = allocations(v)
		case "reallocation":
			r.Reallocation, ok = diag.Bool(v)
		case "release":
			r.Release, ok = release(v)
		case "rollbackConditions":
			r.RollbackConditions, ok = rollbackConditions(v)
		}
		if !ok {
			return 0, false
		}
	}
	// Required: name, type.
	return ruleFields(fs.seen), fs.has(0) && fs.has(1)
}

func allocations(n *yaml.Node) ([]kmodel.TrafficAllocation, bool) {
	if !sequence(n) || len(n.Content) < 1 {
		return nil, false
	}
	out := make([]kmodel.TrafficAllocation, len(n.Content))
	for i, item := range n.Content {
		if !mapping(item) {
			return nil, false
		}
		fs := fields{names: []string{"variationKey", "exposition"}}
		for j := 0; j+1 < len(item.Content); j += 2 {
			field, ok := fs.take(item.Content[j])
			if !ok {
				return nil, false
			}
			if field == 0 {
				out[i].VariationKey, ok = str(item.Content[j+1], 1, 255)
			} else {
				out[i].Exposition, ok = number(item.Content[j+1], true)
			}
			if !ok {
				return nil, false
			}
		}
		if !fs.has(0) || !fs.has(1) {
			return nil, false
		}
	}
	return out, true
}

// The schema's patterns of a release window, compiled as the validator compiles them.
var (
	releaseTime = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?$`)
	timeZone    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$`)
)

func release(n *yaml.Node) (*kmodel.Release, bool) {
	if !mapping(n) || len(n.Content) < 2 { // minProperties 1
		return nil, false
	}
	var rel kmodel.Release
	fs := fields{names: []string{"releaseFrom", "releaseTo", "timeZone"}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		field, ok := fs.take(n.Content[i])
		if !ok {
			return nil, false
		}
		s, ok := diag.String(n.Content[i+1])
		if !ok {
			return nil, false
		}
		switch field {
		case 0:
			rel.ReleaseFrom, ok = s, releaseTime.MatchString(s)
		case 1:
			rel.ReleaseTo, ok = s, releaseTime.MatchString(s)
		case 2:
			rel.TimeZone, ok = s, timeZone.MatchString(s)
		}
		if !ok {
			return nil, false
		}
	}
	return &rel, true
}

var (
	conditionFields = []string{"target", "criteria", "comparisonOperator", "matchValue", "goalId", "visitors", "recipients"}
	isEmail         = jsonschema.Formats["email"]
)

func rollbackConditions(n *yaml.Node) ([]kmodel.RollbackCondition, bool) {
	if !sequence(n) {
		return nil, false
	}
	out := make([]kmodel.RollbackCondition, len(n.Content))
	for i, item := range n.Content {
		if !mapping(item) {
			return nil, false
		}
		rc := &out[i]
		fs := fields{names: conditionFields}
		for j := 0; j+1 < len(item.Content); j += 2 {
			field, ok := fs.take(item.Content[j])
			if !ok {
				return nil, false
			}
			v := item.Content[j+1]
			switch field {
			case 0:
				rc.Target, ok = enum(v, "RULE", "ENVIRONMENT")
			case 1:
				rc.Criteria, ok = enum(v, "UPLIFT", "DOWNLIFT", "CONVERSION_RATE")
			case 2:
				rc.ComparisonOperator, ok = enum(v, "GREATER_THAN", "LESS_THAN")
			case 3:
				rc.MatchValue, ok = number(v, false)
			case 4:
				rc.GoalID, ok = integer(v, 1, maxInt32)
			case 5:
				rc.Visitors, ok = integer(v, 0, maxSafe)
			case 6:
				rc.Recipients, ok = stringList(v, 0, 0, -1, true, func(s string) bool { return isEmail(s) })
			}
			if !ok {
				return nil, false
			}
		}
		if !fs.has(0) || !fs.has(1) || !fs.has(2) || !fs.has(3) {
			return nil, false
		}
	}
	return out, true
}
