package schema

import _ "embed"

//go:embed plan.schema.json
var planSchema []byte

//go:embed validate-report.schema.json
var validateReportSchema []byte

// BaseURL is where the schemas are published: each one's $id is BaseURL + its file name.
const BaseURL = "https://raw.githubusercontent.com/flagsync/flagsync/main/schema/"

// Plan returns the JSON Schema (draft 2020-12) of the JSON plan (plan --format json and
// --json-out). The caller must not modify the returned bytes.
func Plan() []byte { return planSchema }

// ValidateReport returns the JSON Schema (draft 2020-12) of validate --format json's
// report. The caller must not modify the returned bytes.
func ValidateReport() []byte { return validateReportSchema }
