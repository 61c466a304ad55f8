package kameleoon

import "github.com/flagsync/flagsync/schema"

// FlagSchema is the schema of a Kameleoon flag file (schema/flag.schema.json).
func (kprovider) FlagSchema() []byte { return schema.Flag() }

// SettingsSchema is the schema of flagsync.yaml (schema/settings.schema.json).
func (kprovider) SettingsSchema() []byte { return schema.Settings() }
