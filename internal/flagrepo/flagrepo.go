package flagrepo

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"

	"github.com/flagsync/flagsync/internal/diag"
)

// SettingsFile is the name of the repository settings file at the root of the flag
// folder. flagsync.yml is accepted too.
const SettingsFile = "flagsync.yaml"

// SettingsNames are the names a settings file may have, the preferred one first.
var SettingsNames = []string{SettingsFile, "flagsync.yml"}

// IsSettingsName reports whether a file's base name is a settings file's.
func IsSettingsName(base string) bool { return slices.Contains(SettingsNames, base) }

// ReadSettingsFile reads the settings file at the root of dir, flagsync.yaml or
// flagsync.yml; file is "" when neither exists. When both do, the first is read and a
// diagnostic on the second asks to keep one.
func ReadSettingsFile(fsys fs.FS, dir string) (file string, data []byte, diags []diag.Diagnostic, err error) {
	var found []string
	for _, name := range SettingsNames {
		p := path.Join(dir, name)
		b, err := fs.ReadFile(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, nil, fmt.Errorf("read settings %s: %w", p, err)
		}
		if len(found) == 0 {
			data = b
		}
		found = append(found, p)
	}
	if len(found) == 0 {
		return "", nil, nil, nil
	}
	if len(found) > 1 {
		diags = append(diags, diag.Diagnostic{File: found[1], Line: 1, Column: 1,
			Message: fmt.Sprintf("both %s and %s exist: keep one", path.Base(found[0]), path.Base(found[1]))})
	}
	return found[0], data, diags, nil
}
