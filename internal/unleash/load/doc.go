// Package unleashload reads and validates the Unleash flag files of a repository: which
// files are Unleash's (Claim), their YAML and JSON Schema checks and the checks the schema
// cannot express, each problem a diagnostic at file:line:col.
package unleashload
