package splitsandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	splitclient "github.com/flagsync/flagsync/internal/split/client"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
)

// stateVersion is the version of the state file format.
const stateVersion = 1

// stateFile is what Options.StatePath holds.
type stateFile struct {
	Version      int        `json:"version"`
	Environments []string   `json:"environments"`
	NextID       int        `json:"nextId"`
	Flags        []*flagDoc `json:"flags"`
	// ChangeRequests are the change requests filed, in order (absent when none).
	ChangeRequests []*changeRequest `json:"changeRequests,omitempty"`
}

// load reads the state file, if it exists; every definition in it must be valid.
func (s *Server) load() error {
	data, err := os.ReadFile(s.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load split sandbox state %s: %w", s.statePath, err)
	}
	var st stateFile
	if err := decodeStrict(data, &st); err != nil {
		return fmt.Errorf("load split sandbox state %s: %v", s.statePath, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("load split sandbox state %s: version %d, want %d", s.statePath, st.Version, stateVersion)
	}
	for _, e := range st.Environments {
		if e == "" || strings.ContainsAny(e, "/?#") {
			return fmt.Errorf("load split sandbox state %s: environment %q is not a valid name", s.statePath, e)
		}
		if !slices.Contains(s.envs, e) {
			s.envs = append(s.envs, e)
		}
	}
	for i, f := range st.Flags {
		if f == nil || flagNameProblem(f.Name) != "" || f.Workspace == "" {
			return fmt.Errorf("load split sandbox state %s: flags[%d]: not a valid flag", s.statePath, i)
		}
		k := flagKey{f.Workspace, f.Name}
		if s.flags[k] != nil {
			return fmt.Errorf("load split sandbox state %s: flags[%d]: %s/%s is listed twice", s.statePath, i, f.Workspace, f.Name)
		}
		if f.Definitions == nil {
			f.Definitions = map[string]json.RawMessage{}
		}
		for env, raw := range f.Definitions {
			if _, err := readDefinition(raw, raw); err != nil {
				return fmt.Errorf("load split sandbox state %s: %s/%s in %s: %v", s.statePath, f.Workspace, f.Name, env, err)
			}
		}
		s.flags[k] = f
	}
	for i, cr := range st.ChangeRequests {
		if cr == nil || cr.ID == "" || s.flags[flagKey{cr.Workspace, cr.Flag}] == nil {
			return fmt.Errorf("load split sandbox state %s: changeRequests[%d]: not a change request of a known flag", s.statePath, i)
		}
	}
	s.requests = st.ChangeRequests
	s.nextID = max(s.nextID, st.NextID)
	return nil
}

// persist writes the state file after a change; the caller holds s.mu and undoes the
// change when it fails.
func (s *Server) persist() (response, bool) {
	if s.statePath == "" {
		return response{}, false
	}
	st := stateFile{Version: stateVersion, Environments: s.envs, NextID: s.nextID, Flags: []*flagDoc{}, ChangeRequests: s.requests}
	for _, f := range s.flags {
		st.Flags = append(st.Flags, f)
	}
	slices.SortFunc(st.Flags, func(a, b *flagDoc) int {
		if c := strings.Compare(a.Workspace, b.Workspace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	data, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = writeFileAtomic(s.statePath, append(data, '\n'))
	}
	if err != nil {
		s.log.Error("split sandbox: cannot save state; the change is undone", "path", s.statePath, "error", err)
		return errorResponse(http.StatusInternalServerError, "cannot save the sandbox state"), true
	}
	return response{}, false
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Seed puts a flag and its definitions straight into the sandbox, as if created through
// the API (tests and demos start from a known state this way). f.Workspace, f.Name and
// f.TrafficType must be set; definitions must be valid.
func (s *Server) Seed(f splitmodel.Flag) error {
	if msg := flagNameProblem(f.Name); msg != "" || f.Workspace == "" {
		return fmt.Errorf("seed flag %q: %s", f.Name, msg)
	}
	tt, ok := s.trafficType(f.TrafficType)
	if !ok {
		return fmt.Errorf("seed flag %s: traffic type %q not found", f.Name, f.TrafficType)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := flagKey{f.Workspace, f.Name}
	if s.flags[k] != nil {
		return fmt.Errorf("seed flag %s: it exists", f.Name)
	}
	now := s.now().UnixMilli()
	doc := &flagDoc{
		ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", s.nextID, s.nextID), Workspace: f.Workspace, Name: f.Name,
		Description: f.Description, TrafficType: tt, Tags: slices.Clone(f.Tags), CreationTime: now,
		Definitions: map[string]json.RawMessage{},
	}
	if doc.Tags == nil {
		doc.Tags = []string{}
	}
	for envParam, d := range f.Environments {
		env, ok := s.environment(envParam)
		if !ok {
			return fmt.Errorf("seed flag %s: environment %q not found", f.Name, envParam)
		}
		checked, err := readDefinition(splitclient.EncodeDefinition(d), nil)
		if err != nil {
			return fmt.Errorf("seed flag %s in %s: %w", f.Name, env, err)
		}
		doc.Definitions[env] = stored(doc, env, checked, now, now)
	}
	s.flags[k] = doc
	s.nextID++
	if _, failed := s.persist(); failed {
		delete(s.flags, k)
		return fmt.Errorf("seed flag %s: cannot save the state", f.Name)
	}
	return nil
}
