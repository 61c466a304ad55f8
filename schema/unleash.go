package schema

import _ "embed"

//go:embed unleash-flag.schema.json
var unleashFlagSchema []byte

//go:embed unleash-settings.schema.json
var unleashSettingsSchema []byte

// UnleashFlagName and UnleashSettingsName are the Unleash schemas' file names in this folder.
const (
	UnleashFlagName     = "unleash-flag.schema.json"
	UnleashSettingsName = "unleash-settings.schema.json"
)

// UnleashFlag returns the JSON Schema (draft 2020-12) of one Unleash flag file. The caller
// must not modify the returned bytes.
func UnleashFlag() []byte { return unleashFlagSchema }

// UnleashSettings returns the JSON Schema (draft 2020-12) of flagsync.yaml in an Unleash
// repository. The caller must not modify the returned bytes.
func UnleashSettings() []byte { return unleashSettingsSchema }
