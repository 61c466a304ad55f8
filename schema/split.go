package schema

import _ "embed"

//go:embed split-flag.schema.json
var splitFlagSchema []byte

//go:embed split-settings.schema.json
var splitSettingsSchema []byte

// SplitFlagName and SplitSettingsName are the Split schemas' file names in this folder.
const (
	SplitFlagName     = "split-flag.schema.json"
	SplitSettingsName = "split-settings.schema.json"
)

// SplitFlag returns the JSON Schema (draft 2020-12) of one Split flag file. The caller
// must not modify the returned bytes.
func SplitFlag() []byte { return splitFlagSchema }

// SplitSettings returns the JSON Schema (draft 2020-12) of flagsync.yaml in a Split
// repository. The caller must not modify the returned bytes.
func SplitSettings() []byte { return splitSettingsSchema }
