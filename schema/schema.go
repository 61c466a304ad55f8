package schema

import _ "embed"

//go:embed flag.schema.json
var flagSchema []byte

//go:embed settings.schema.json
var settingsSchema []byte

// FlagName and SettingsName are the schema files' names in this folder; the loader uses
// them as the schemas' locations when it compiles them.
const (
	FlagName     = "flag.schema.json"
	SettingsName = "settings.schema.json"
)

// Flag returns the JSON Schema (draft 2020-12) of one flag file. The caller must not
// modify the returned bytes.
func Flag() []byte { return flagSchema }

// Settings returns the JSON Schema (draft 2020-12) of flagsync.yaml. The caller must not
// modify the returned bytes.
func Settings() []byte { return settingsSchema }
