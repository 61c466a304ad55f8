package unleash

import "github.com/flagsync/flagsync/schema"

// FlagSchema is the schema of an Unleash flag file (schema/unleash-flag.schema.json).
func (uprovider) FlagSchema() []byte { return schema.UnleashFlag() }

// SettingsSchema is the schema of flagsync.yaml with vendor: unleash
// (schema/unleash-settings.schema.json).
func (uprovider) SettingsSchema() []byte { return schema.UnleashSettings() }
