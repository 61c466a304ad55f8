package split

import "github.com/flagsync/flagsync/schema"

// FlagSchema is the schema of a Split flag file (schema/split-flag.schema.json).
func (sprovider) FlagSchema() []byte { return schema.SplitFlag() }

// SettingsSchema is the schema of flagsync.yaml with vendor: split
// (schema/split-settings.schema.json).
func (sprovider) SettingsSchema() []byte { return schema.SplitSettings() }
