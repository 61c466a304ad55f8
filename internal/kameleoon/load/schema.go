package kload

import (
	"sync"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/schema"
)

// schemas are Kameleoon's flag and settings schemas, compiled.
type schemas struct {
	flag, settings *diag.Schema
}

// loadSchemas compiles the embedded schemas once per process; the compiled schemas are
// read-only and shared by all goroutines.
var loadSchemas = sync.OnceValues(func() (*schemas, error) {
	var s schemas
	var err error
	if s.flag, err = diag.CompileSchema(schema.FlagName, schema.Flag(), serverOwned); err != nil {
		return nil, err
	}
	if s.settings, err = diag.CompileSchema(schema.SettingsName, schema.Settings(), serverOwned); err != nil {
		return nil, err
	}
	return &s, nil
})

// flagLiteral are the paths of a flag file whose values keep the literal text written
// (variables[i].value and variations[i].variables[j].value): the API stores every value
// as a string, so `value: 1.50` is "1.50", `value: true` is "true" and an empty `value:`
// is "".
var flagLiteral = [][]string{{"variables", "[]", "value"}, {"variations", "[]", "variables", "[]", "value"}}

// parseDocument parses one YAML file, a flag file or the settings. It returns a nil
// document when nothing could be checked (syntax error, empty file, top level not a
// mapping). With allowEmpty an empty file is an empty mapping instead of an error.
func parseDocument(file string, data []byte, allowEmpty, flagFile bool) (*diag.Document, []diag.Diagnostic) {
	k := diag.Kind{AllowEmpty: allowEmpty, What: "settings",
		Empty: "file is empty: a flag file needs at least featureKey, name and variations"}
	if flagFile {
		k.What, k.Literal = "flag fields", flagLiteral
	}
	return diag.Parse(file, data, k)
}

// serverOwned explains the API's read-only and renamed fields, which people copy from
// API responses into flag files.
var serverOwned = map[string]string{
	"id":                        "ids are set by Kameleoon and not written in flag files (rules are identified by name)",
	"experimentId":              "experimentId is set by Kameleoon and not written in flag files",
	"variationId":               "variationId is set by Kameleoon; use variationKey",
	"orderIndex":                "rules are applied in the order they are listed; there is no orderIndex",
	"dateCreated":               "dates are set by Kameleoon and not written in flag files",
	"dateModified":              "dates are set by Kameleoon and not written in flag files",
	"dateContentModified":       "dates are set by Kameleoon and not written in flag files",
	"health":                    "health is computed by Kameleoon and not written in flag files",
	"teamId":                    "teamId is set by Kameleoon and not written in flag files",
	"createdById":               "createdById is set by Kameleoon and not written in flag files",
	"status":                    `did you mean "state"? (the API reads a rule's state back as status)`,
	"isArchived":                `did you mean "archived"?`,
	"environmentConfigurations": "write environments as a mapping keyed by environment key: environments: {production: {...}}",
	"environmentKey":            "the environment key is the key of this entry under environments",
	"multiArmedBandit":          "use trafficAllocationMethod: MULTI_ARMED_BANDIT",
}
