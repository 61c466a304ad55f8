package diag

import "testing"

func TestDiagnosticString(t *testing.T) {
	d := Diagnostic{File: "flags/a.yaml", Line: 3, Column: 7, Field: "name", Message: "must not be empty"}
	if got, want := d.String(), "flags/a.yaml:3:7: name: must not be empty"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	d.Field = ""
	if got, want := d.String(), "flags/a.yaml:3:7: must not be empty"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
