// Package unleashexport writes the flags of existing Unleash projects as an Unleash flag
// repository (flagsync.yaml and one file per flag) that plans to no change against the
// projects it was read from, and checks that it does.
package unleashexport
