// Package flagrepo knows the layout of a flag repository that is the same for every
// vendor: the settings file at the root of the flag folder (flagsync.yaml or
// flagsync.yml), which each vendor decodes for its own keys.
package flagrepo
