package ksandbox

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// stateVersion is the version of the state file format.
const stateVersion = 1

// stateFile is what Options.StatePath holds: the project's environments, the next ids
// (so that a restarted sandbox never hands out an id twice) and the flags in the read
// shape.
type stateFile struct {
	Version      int               `json:"version"`
	Environments []string          `json:"environments"`
	NextIDs      idCounters        `json:"nextIds"`
	Flags        []json.RawMessage `json:"flags"`
}

// load reads the state file, if it exists. A project's environments are never removed:
// those of the file that Options.Environments does not name are added after them. Every
// flag must be valid for the resulting project (sites, environments): a file that is not
// is an error, not a partial load.
func (s *Server) load() error {
	data, err := os.ReadFile(s.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load sandbox state %s: %w", s.statePath, err)
	}
	var st stateFile
	if err := decodeStrict(data, &st); err != nil {
		return fmt.Errorf("load sandbox state %s: %v", s.statePath, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("load sandbox state %s: version %d, want %d", s.statePath, st.Version, stateVersion)
	}
	for _, e := range st.Environments {
		if e == "" || strings.ContainsAny(e, "/?# ") {
			return fmt.Errorf("load sandbox state %s: environment %q: not a valid key", s.statePath, e)
		}
		if !slices.Contains(s.envs, e) {
			s.envs = append(s.envs, e)
		}
	}
	ids := newIDCounters()
	ids.Flag = max(ids.Flag, st.NextIDs.Flag)
	ids.Rule = max(ids.Rule, st.NextIDs.Rule)
	ids.Experiment = max(ids.Experiment, st.NextIDs.Experiment)
	ids.RollbackCondition = max(ids.RollbackCondition, st.NextIDs.RollbackCondition)
	flags := map[flagRef]*flagDoc{}
	for i, raw := range st.Flags {
		var w wFlag
		if err := decodeStrict(raw, &w); err != nil {
			return fmt.Errorf("load sandbox state %s: flags[%d]: %v", s.statePath, i, err)
		}
		f, err := s.seed(&w, &ids, flags)
		if err != nil {
			return fmt.Errorf("load sandbox state %s: flags[%d]: %w", s.statePath, i, err)
		}
		ref := flagRef{f.SiteCode, f.FeatureKey}
		if flags[ref] != nil {
			return fmt.Errorf("load sandbox state %s: flags[%d]: %s/%s is listed twice", s.statePath, i, f.SiteCode, f.FeatureKey)
		}
		flags[ref] = f
	}
	s.flags, s.ids = flags, ids
	return nil
}

// save writes the state file atomically: a temporary file in the same directory,
// synced, then renamed over the old one.
func (s *Server) save(flags map[flagRef]*flagDoc, ids idCounters) error {
	list := make([]*flagDoc, 0, len(flags))
	for _, f := range flags {
		list = append(list, f)
	}
	slices.SortFunc(list, func(a, b *flagDoc) int { return cmp.Compare(a.ID, b.ID) })
	st := stateFile{Version: stateVersion, Environments: s.envs, NextIDs: ids, Flags: make([]json.RawMessage, 0, len(list))}
	for _, f := range list {
		b, err := json.Marshal(render(f, allFields()))
		if err != nil {
			return fmt.Errorf("save sandbox state: %w", err)
		}
		st.Flags = append(st.Flags, b)
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("save sandbox state: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return fmt.Errorf("save sandbox state: %w", err)
	}
	out.WriteByte('\n')
	return writeFileAtomic(s.statePath, out.Bytes())
}

func writeFileAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("save sandbox state %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save sandbox state %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save sandbox state %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save sandbox state %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save sandbox state %s: %w", path, err)
	}
	return nil
}
