package kexport

import (
	"errors"
	"fmt"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/export"
	kload "github.com/flagsync/flagsync/internal/kameleoon/load"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
)

// Verify loads the exported files the way flagsync loads a repository (in memory, so
// other files in the output folder do not matter) and plans them against the live
// flags they were built from.
func Verify(e *export.Export, sites []Site) (*export.Check, error) {
	fsys := fstest.MapFS{}
	for _, f := range e.Files {
		fsys[f.Path] = &fstest.MapFile{Data: f.Data, Mode: 0o644}
	}
	desired, err := kload.Load(fsys, ".")
	var invalid *diag.InvalidError
	if errors.As(err, &invalid) {
		return &export.Check{Diagnostics: invalid.Diagnostics}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify export: %w", err)
	}

	var live []kmodel.Flag
	for _, s := range sites {
		for _, f := range s.Flags {
			if f.SiteCode == "" {
				f.SiteCode = s.Code
			}
			live = append(live, f)
		}
	}
	// A flag archived on both sides is frozen for the planner; compare its content as if
	// it were restored on both sides. A flag archived on one side only keeps its mark, so
	// that a lost mark shows as a change.
	liveArchived := map[kmodel.Ref]bool{}
	for i := range live {
		if live[i].Archived {
			liveArchived[live[i].Ref()] = true
		}
	}
	both := map[kmodel.Ref]bool{}
	for i := range desired.Flags {
		if d := &desired.Flags[i]; d.Archived && liveArchived[d.Ref()] {
			both[d.Ref()] = true
			d.Archived = false
		}
	}
	for i := range live {
		if both[live[i].Ref()] {
			live[i].Archived = false
		}
	}
	p, err := kplan.Compute(desired, live, kplan.OptionsFor(desired.Settings))
	if err != nil {
		return nil, fmt.Errorf("verify export: %w", err)
	}
	return &export.Check{Plan: p}, nil
}
