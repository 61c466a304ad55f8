package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/schema"
)

// schemaSynopsis is schema's help.
func (a *app) schemaSynopsis() string {
	return `Usage: flagsync schema flag|settings|plan|validate-report [--vendor ` + strings.Join(a.schemaVendors(), "|") + `]

Prints a JSON Schema (draft 2020-12), the one this binary validates with or writes by, for
editors and other tools. Each has a stable $id: ` + schema.BaseURL + `<name>.schema.json.

  flag             one flag file of the service --vendor names
  settings         flagsync.yaml of that service's repositories
  plan             the JSON plan: plan --format json and plan --json-out (format_version 2)
  validate-report  validate --format json's report (format_version 1)

Examples:
  flagsync schema flag > schema/flag.schema.json
  flagsync schema flag --vendor split > schema/split-flag.schema.json
  flagsync schema plan | jq '.["$defs"].change.properties | keys'`
}

// schemaNames are what flagsync schema prints.
func schemaNames(*app) []string { return []string{"flag", "settings", "plan", "validate-report"} }

// schemaVendors names the providers whose files have schemas.
func (a *app) schemaVendors() []string {
	var out []string
	for _, p := range a.providers.All() {
		if _, ok := p.(provider.Schemas); ok {
			out = append(out, p.Name())
		}
	}
	return out
}

func cmdSchema(_ context.Context, a *app, args []string) int {
	fs := a.newFlagSet("schema", a.schemaSynopsis())
	vendors := a.schemaVendors()
	vendor := fs.String("vendor", a.providers.Default().Name(), "the service of flag and settings: "+strings.Join(vendors, " or "))
	fs.Enum("vendor", vendors...)
	if code := a.parseArgs(fs, args, 1); code >= 0 {
		return code
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(a.stderr, "flagsync schema: "+format+"\n%s\n", append(args, fs.HelpHint())...)
		return exitUsage
	}
	if fs.NArg() == 0 {
		return usage("give the schema: %s", strings.Join(schemaNames(a), ", "))
	}
	name := fs.Arg(0)
	if (name == "plan" || name == "validate-report") && fs.Given("vendor") {
		return usage("--vendor goes with flag and settings: the %s schema is every service's", name)
	}
	var b []byte
	switch name {
	case "plan":
		b = schema.Plan()
	case "validate-report":
		b = schema.ValidateReport()
	case "flag", "settings":
		p, _ := a.providers.Lookup(*vendor)
		s := p.(provider.Schemas)
		b = s.FlagSchema()
		if name == "settings" {
			b = s.SettingsSchema()
		}
	default:
		return usage("%q: want %s", name, strings.Join(schemaNames(a), ", "))
	}
	if _, err := a.stdout.Write(b); err != nil {
		fmt.Fprintf(a.stderr, "flagsync schema: %v\n", err)
		return exitFail
	}
	return exitOK
}
