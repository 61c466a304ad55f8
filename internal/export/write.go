package export

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ExistsError is returned by Write when files of the export already exist and
// overwriting was not asked for. Nothing was written.
type ExistsError struct {
	Dir   string   // the output folder
	Paths []string // the existing files, slash-separated, relative to Dir
}

// Error names the output folder and the first few existing files.
func (e *ExistsError) Error() string {
	const show = 5
	list := e.Paths
	more := ""
	if len(list) > show {
		more = fmt.Sprintf(" and %d more", len(list)-show)
		list = list[:show]
	}
	return fmt.Sprintf("write export to %s: %d files exist (%s%s)", e.Dir, len(e.Paths), strings.Join(list, ", "), more)
}

// Write writes the files below dir, creating folders as needed, and returns the paths
// of the files it replaced. Unless overwrite is set, it first checks that none of the
// files exists and writes nothing if one does (an *ExistsError). It never deletes or
// renames anything: files in dir that are not part of the export stay as they are.
func Write(dir string, files []File, overwrite bool) (replaced []string, err error) {
	var exists []string
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Errorf("write export: %w", err)
		case st.IsDir():
			return nil, fmt.Errorf("write export: %s is a directory", p)
		}
		exists = append(exists, f.Path)
	}
	if len(exists) > 0 && !overwrite {
		return nil, &ExistsError{Dir: dir, Paths: exists}
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("write export: %w", err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return nil, fmt.Errorf("write export: %w", err)
		}
	}
	return exists, nil
}
