package export

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/flagrepo"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	splitload "github.com/flagsync/flagsync/internal/split/load"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitplan "github.com/flagsync/flagsync/internal/split/plan"
	"github.com/flagsync/flagsync/schema"
)

// SplitLister reads a Split workspace's flags with their definitions in some
// environments; *splitclient.Client is one.
type SplitLister interface {
	ReadFlags(ctx context.Context, workspace string, envs []string) ([]splitmodel.Flag, error)
}

// SplitWorkspace is the live flags of one Split workspace, with their definitions in
// Environments.
type SplitWorkspace struct {
	ID           string
	Environments []string
	Flags        []splitmodel.Flag
}

// ReadSplit lists a workspace's flags and their definitions in envs: one list of flags
// and one list of definitions per environment (paged by the client).
func ReadSplit(ctx context.Context, l SplitLister, workspace string, envs []string) (*SplitWorkspace, error) {
	flags, err := l.ReadFlags(ctx, workspace, envs)
	if err != nil {
		return nil, fmt.Errorf("export workspace %s: %w", workspace, err)
	}
	for i := range flags {
		flags[i].Workspace = workspace
	}
	return &SplitWorkspace{ID: workspace, Environments: slices.Clone(envs), Flags: flags}, nil
}

// BuildSplit renders a workspace's live flags as a Split repository: flagsync.yaml
// (vendor: split, the workspace, the traffic type most flags have, the environments read)
// and one <name>.yaml per flag, without the defaults the planner assumes and without
// flagsync's ownership tag. The same live state always gives byte-identical files.
func BuildSplit(w *SplitWorkspace, opts Options) (*Export, error) {
	e := &Export{Sites: []string{w.ID}}
	flags := slices.Clone(w.Flags)
	slices.SortFunc(flags, func(a, b splitmodel.Flag) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	trafficType := commonTrafficType(flags)
	var files []File
	for i := range flags {
		f := &flags[i]
		if i > 0 && flags[i-1].Name == f.Name {
			e.Notes = append(e.Notes, fmt.Sprintf("%s/%s: the API listed this flag more than once; the first was exported", w.ID, f.Name))
			continue
		}
		if !safeName.MatchString(f.Name) {
			return nil, fmt.Errorf("export flag %s/%s: the name cannot be a file name", w.ID, f.Name)
		}
		doc, err := splitFlagDocument(f, trafficType, w.Environments)
		if err != nil {
			return nil, fmt.Errorf("export flag %s/%s: %w", w.ID, f.Name, err)
		}
		p := fileName(f.Name)
		data, err := withHeader(doc, headerLines(opts.Schema, schema.SplitFlagName, depth(p), "Exported from Split workspace "+w.ID+" by flagsync export."))
		if err != nil {
			return nil, fmt.Errorf("export flag %s/%s: %w", w.ID, f.Name, err)
		}
		ref := kmodel.Ref{SiteCode: w.ID, FeatureKey: f.Name}
		files = append(files, File{Path: p, Data: data, Flag: &ref})
		if len(f.Environments) == 0 {
			e.Notes = append(e.Notes, fmt.Sprintf("%s: not configured in %s; its file lists no environment", ref, joinAnd(w.Environments)))
		}
		e.Flags++
	}
	m := newMapping()
	m.addComment("vendor", str(splitmodel.Vendor), "Every flag file here is a Split (Harness FME) flag.")
	m.addComment("workspace", str(w.ID), "Default workspace id of the flag files.")
	if trafficType != "" {
		m.addComment("trafficType", str(trafficType), "Default traffic type of the flag files.")
	}
	if len(w.Environments) > 0 {
		m.addComment("environments", strSeq(w.Environments), "The environments the flags configure, in the order flagsync applies changes.")
	}
	m.addComment("prune", boolNode(false), "Kill flags whose file is removed (only flags flagsync created; never deleted). Off: such flags are reported and left alone.")
	data, err := withHeader(m.n, headerLines(opts.Schema, schema.SplitSettingsName, 0, "Exported from Split workspace "+w.ID+" by flagsync export."))
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", flagrepo.SettingsFile, err)
	}
	e.Files = append([]File{{Path: flagrepo.SettingsFile, Data: data}}, files...)
	return e, nil
}

// commonTrafficType is the traffic type most flags have (the first by name on a tie).
func commonTrafficType(flags []splitmodel.Flag) string {
	count := map[string]int{}
	best := ""
	for _, f := range flags {
		count[f.TrafficType]++
		if c := count[f.TrafficType]; c > count[best] || (c == count[best] && f.TrafficType < best) {
			best = f.TrafficType
		}
	}
	return best
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return "any environment read"
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " or " + s[len(s)-1]
}

// splitFlagDocument builds the YAML of one Split flag: name, description, tags,
// trafficType (when not the settings' default), environments in the order read.
func splitFlagDocument(f *splitmodel.Flag, defaultType string, order []string) (*yaml.Node, error) {
	m := newMapping()
	m.add("name", str(f.Name))
	if f.Description != "" {
		m.add("description", str(f.Description))
	}
	if tags := tagSet(f.Tags); len(tags) > 0 {
		m.add("tags", strSeq(tags))
	}
	if f.TrafficType != defaultType {
		m.add("trafficType", str(f.TrafficType))
	}
	envs := newMapping()
	for _, env := range order {
		d, ok := f.Environments[env]
		if !ok {
			continue
		}
		envs.add(env, definitionNode(splitmodel.Normalise(d)))
	}
	if envs.len() > 0 {
		m.add("environments", envs.n)
	}
	return m.n, nil
}

// definitionNode writes a definition without what the planner takes as default: a
// traffic allocation of 100, killed false, a default rule of 100 % of the default
// treatment.
func definitionNode(d splitmodel.Definition) *yaml.Node {
	m := newMapping()
	items := make([]*yaml.Node, len(d.Treatments))
	for i, t := range d.Treatments {
		tm := newMapping()
		tm.add("name", str(t.Name))
		if t.Description != "" {
			tm.add("description", str(t.Description))
		}
		if t.Configurations != "" {
			tm.add("configurations", str(t.Configurations))
		}
		if len(t.Keys) > 0 {
			tm.add("keys", strSeq(t.Keys))
		}
		if len(t.Segments) > 0 {
			tm.add("segments", strSeq(t.Segments))
		}
		items[i] = tm.n
	}
	m.add("treatments", seq(items...))
	m.add("defaultTreatment", str(d.DefaultTreatment))
	if d.BaselineTreatment != "" {
		m.add("baselineTreatment", str(d.BaselineTreatment))
	}
	if a := d.Allocation(); a != splitmodel.DefaultTrafficAllocation {
		m.add("trafficAllocation", intNode(int64(a)))
	}
	if d.Killed {
		m.add("killed", boolNode(true))
	}
	if len(d.Rules) > 0 {
		rules := make([]*yaml.Node, len(d.Rules))
		for i, r := range d.Rules {
			matchers := make([]*yaml.Node, len(r.Condition.Matchers))
			for j, mt := range r.Condition.Matchers {
				matchers[j] = matcherNode(mt)
			}
			cond := newMapping()
			cond.add("matchers", seq(matchers...))
			rm := newMapping()
			rm.add("condition", cond.n)
			rm.add("buckets", bucketsNode(r.Buckets))
			rules[i] = rm.n
		}
		m.add("rules", seq(rules...))
	}
	if !slices.Equal(d.DefaultRule, []splitmodel.Bucket{{Treatment: d.DefaultTreatment, Size: 100}}) {
		m.add("defaultRule", bucketsNode(d.DefaultRule))
	}
	return m.n
}

func bucketsNode(bs []splitmodel.Bucket) *yaml.Node {
	items := make([]*yaml.Node, len(bs))
	for i, b := range bs {
		bm := newMapping()
		bm.add("treatment", str(b.Treatment))
		bm.add("size", intNode(int64(b.Size)))
		bm.n.Style = yaml.FlowStyle
		items[i] = bm.n
	}
	return seq(items...)
}

func matcherNode(mt splitmodel.Matcher) *yaml.Node {
	m := newMapping()
	m.add("type", str(mt.Type))
	if mt.Negate {
		m.add("negate", boolNode(true))
	}
	if mt.Attribute != "" {
		m.add("attribute", str(mt.Attribute))
	}
	if mt.String != "" {
		m.add("string", str(mt.String))
	}
	if mt.Bool != nil {
		m.add("bool", boolNode(*mt.Bool))
	}
	if len(mt.Strings) > 0 {
		m.add("strings", strSeq(mt.Strings))
	}
	if mt.Number != nil {
		m.add("number", floatNode(*mt.Number))
	}
	if mt.Date != nil {
		m.add("date", intNode(*mt.Date))
	}
	if mt.Between != nil {
		b := newMapping()
		b.add("from", floatNode(mt.Between.From))
		b.add("to", floatNode(mt.Between.To))
		b.n.Style = yaml.FlowStyle
		m.add("between", b.n)
	}
	if mt.Depends != nil {
		d := newMapping()
		d.add("splitName", str(mt.Depends.SplitName))
		d.add("treatment", str(mt.Depends.Treatment))
		d.n.Style = yaml.FlowStyle
		m.add("depends", d.n)
	}
	if len(m.n.Content) <= 8 {
		m.n.Style = yaml.FlowStyle
	}
	return m.n
}

// VerifySplit loads the exported files as flagsync loads a Split repository (in memory)
// and plans them against the live flags they were built from: the check is OK when they
// are valid and plan to nothing.
func VerifySplit(e *Export, w *SplitWorkspace) (*Check, error) {
	fsys := fstest.MapFS{}
	for _, f := range e.Files {
		fsys[path.Clean(f.Path)] = &fstest.MapFile{Data: f.Data, Mode: 0o644}
	}
	desired, err := splitload.Load(fsys, ".")
	var invalid *diag.InvalidError
	if errors.As(err, &invalid) {
		return &Check{Diagnostics: invalid.Diagnostics}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify export: %w", err)
	}
	p, err := splitplan.Compute(desired, w.Flags, splitplan.OptionsFor(desired.Settings))
	if err != nil {
		return nil, fmt.Errorf("verify export: %w", err)
	}
	return &Check{Plan: p}, nil
}
