package flagrepo

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/diag"
	"gopkg.in/yaml.v3"
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

// HasSettings reports whether dir has a settings file (flagsync.yaml or flagsync.yml).
func HasSettings(fsys fs.FS, dir string) (bool, error) {
	for _, name := range SettingsNames {
		p := path.Join(dir, name)
		_, err := fs.Stat(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("read settings %s: %w", p, err)
		}
		return true, nil
	}
	return false, nil
}

// FlagFiles lists the flag files below dir: the *.yaml and *.yml files, not the settings
// files, and nothing whose name starts with a dot (nor anything in such a folder), in
// lexical order.
func FlagFiles(fsys fs.FS, dir string) ([]string, error) {
	var files []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) || IsSettingsName(name) {
			return nil
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list flag files in %s: %w", dir, err)
	}
	return files, nil
}

// DeclaresVendor reports whether a YAML document's top-level vendor: value is vendor, as a
// service that claims its files by that key asks. Only a document with a line starting
// with "vendor:" is parsed. A document that does not parse is still the vendor's when a
// line plainly says "vendor: <vendor>" (quoted or not), so that its problems are reported
// against that vendor's schema.
func DeclaresVendor(data []byte, vendor string) bool {
	if !bytes.HasPrefix(data, []byte("vendor:")) && !bytes.Contains(data, []byte("\nvendor:")) {
		return false
	}
	var top struct {
		Vendor any `yaml:"vendor"`
	}
	if yaml.Unmarshal(data, &top) != nil {
		for line := range bytes.Lines(data) {
			if v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("vendor:")); ok && strings.Trim(strings.TrimSpace(string(v)), `"'`) == vendor {
				return true
			}
		}
		return false
	}
	s, _ := top.Vendor.(string)
	return s == vendor
}
