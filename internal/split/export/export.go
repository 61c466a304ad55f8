package splitexport

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/export"
	"github.com/flagsync/flagsync/internal/flagrepo"
	splitload "github.com/flagsync/flagsync/internal/split/load"
	splitmodel "github.com/flagsync/flagsync/internal/split/model"
	splitplan "github.com/flagsync/flagsync/internal/split/plan"
	"github.com/flagsync/flagsync/schema"
)

// SplitLister reads a Split workspace's flags with their definitions in some
// environments; *splitclient.Client is one.
type Lister interface {
	ReadFlags(ctx context.Context, workspace string, envs []string) ([]splitmodel.Flag, error)
}

// SplitWorkspace is the live flags of one Split workspace, with their definitions in
// Environments.
type Workspace struct {
	ID           string
	Environments []string
	Flags        []splitmodel.Flag
}

// ReadSplit lists a workspace's flags and their definitions in envs: one list of flags
// and one list of definitions per environment (paged by the client).
func Read(ctx context.Context, l Lister, workspace string, envs []string) (*Workspace, error) {
	flags, err := l.ReadFlags(ctx, workspace, envs)
	if err != nil {
		return nil, fmt.Errorf("export workspace %s: %w", workspace, err)
	}
	for i := range flags {
		flags[i].Workspace = workspace
	}
	return &Workspace{ID: workspace, Environments: slices.Clone(envs), Flags: flags}, nil
}

// BuildSplit renders a workspace's live flags as a Split repository: flagsync.yaml
// (vendor: split, the workspace, the traffic type most flags have, the environments read)
// and one <name>.yaml per flag, without the defaults the planner assumes and without
// flagsync's ownership tag. The same live state always gives byte-identical files.
func Build(w *Workspace, opts export.Options) (*export.Export, error) {
	e := &export.Export{Scopes: []string{w.ID}}
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
	var files []export.File
	for i := range flags {
		f := &flags[i]
		if i > 0 && flags[i-1].Name == f.Name {
			e.Notes = append(e.Notes, fmt.Sprintf("%s/%s: the API listed this flag more than once; the first was exported", w.ID, f.Name))
			continue
		}
		if !export.SafeName.MatchString(f.Name) {
			return nil, fmt.Errorf("export flag %s/%s: the name cannot be a file name", w.ID, f.Name)
		}
		doc, err := flagDocument(f, trafficType, w.Environments)
		if err != nil {
			return nil, fmt.Errorf("export flag %s/%s: %w", w.ID, f.Name, err)
		}
		p := export.FileName(f.Name)
		data, err := export.WithHeader(doc, export.HeaderLines(opts.Schema, schema.SplitFlagName, export.Depth(p), "Exported from Split workspace "+w.ID+" by flagsync export."))
		if err != nil {
			return nil, fmt.Errorf("export flag %s/%s: %w", w.ID, f.Name, err)
		}
		ref := splitmodel.Ref{Workspace: w.ID, Name: f.Name}
		addr := splitplan.AddressOf(ref, "")
		files = append(files, export.File{Path: p, Data: data, Flag: &addr})
		if len(f.Environments) == 0 {
			e.Notes = append(e.Notes, fmt.Sprintf("%s: not configured in %s; its file lists no environment", ref, joinAnd(w.Environments)))
		}
		e.Flags++
	}
	m := export.NewMapping()
	m.AddComment("vendor", export.Str(splitmodel.Vendor), "Every flag file here is a Split (Harness FME) flag.")
	m.AddComment("workspace", export.Str(w.ID), "Default workspace id of the flag files.")
	if trafficType != "" {
		m.AddComment("trafficType", export.Str(trafficType), "Default traffic type of the flag files.")
	}
	if len(w.Environments) > 0 {
		m.AddComment("environments", export.StrSeq(w.Environments), "The environments the flags configure, in the order flagsync applies changes.")
	}
	m.AddComment("prune", export.BoolNode(false), "Kill flags whose file is removed (only flags flagsync created; never deleted). Off: such flags are reported and left alone.")
	data, err := export.WithHeader(m.Node(), export.HeaderLines(opts.Schema, schema.SplitSettingsName, 0, "Exported from Split workspace "+w.ID+" by flagsync export."))
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", flagrepo.SettingsFile, err)
	}
	e.Files = append([]export.File{{Path: flagrepo.SettingsFile, Data: data}}, files...)
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
func flagDocument(f *splitmodel.Flag, defaultType string, order []string) (*yaml.Node, error) {
	m := export.NewMapping()
	m.Add("name", export.Str(f.Name))
	if f.Description != "" {
		m.Add("description", export.Str(f.Description))
	}
	if tags := tagSet(f.Tags); len(tags) > 0 {
		m.Add("tags", export.StrSeq(tags))
	}
	if f.TrafficType != defaultType {
		m.Add("trafficType", export.Str(f.TrafficType))
	}
	envs := export.NewMapping()
	for _, env := range order {
		d, ok := f.Environments[env]
		if !ok {
			continue
		}
		envs.Add(env, definitionNode(splitmodel.Normalise(d)))
	}
	if envs.Len() > 0 {
		m.Add("environments", envs.Node())
	}
	return m.Node(), nil
}

// definitionNode writes a definition without what the planner takes as default: a
// traffic allocation of 100, killed false, impressionsDisabled false, a default rule
// of 100 % of the default treatment.
func definitionNode(d splitmodel.Definition) *yaml.Node {
	m := export.NewMapping()
	items := make([]*yaml.Node, len(d.Treatments))
	for i, t := range d.Treatments {
		tm := export.NewMapping()
		tm.Add("name", export.Str(t.Name))
		if t.Description != "" {
			tm.Add("description", export.Str(t.Description))
		}
		if t.Configurations != "" {
			tm.Add("configurations", export.Str(t.Configurations))
		}
		if len(t.Keys) > 0 {
			tm.Add("keys", export.StrSeq(t.Keys))
		}
		if len(t.Segments) > 0 {
			tm.Add("segments", export.StrSeq(t.Segments))
		}
		items[i] = tm.Node()
	}
	m.Add("treatments", export.Seq(items...))
	m.Add("defaultTreatment", export.Str(d.DefaultTreatment))
	if d.BaselineTreatment != "" {
		m.Add("baselineTreatment", export.Str(d.BaselineTreatment))
	}
	if a := d.Allocation(); a != splitmodel.DefaultTrafficAllocation {
		m.Add("trafficAllocation", export.IntNode(int64(a)))
	}
	if d.Killed {
		m.Add("killed", export.BoolNode(true))
	}
	if d.ImpressionsDisabled {
		m.Add("impressionsDisabled", export.BoolNode(true))
	}
	if len(d.Rules) > 0 {
		rules := make([]*yaml.Node, len(d.Rules))
		for i, r := range d.Rules {
			matchers := make([]*yaml.Node, len(r.Condition.Matchers))
			for j, mt := range r.Condition.Matchers {
				matchers[j] = matcherNode(mt)
			}
			cond := export.NewMapping()
			cond.Add("matchers", export.Seq(matchers...))
			rm := export.NewMapping()
			rm.Add("condition", cond.Node())
			rm.Add("buckets", bucketsNode(r.Buckets))
			rules[i] = rm.Node()
		}
		m.Add("rules", export.Seq(rules...))
	}
	if !slices.Equal(d.DefaultRule, []splitmodel.Bucket{{Treatment: d.DefaultTreatment, Size: 100}}) {
		m.Add("defaultRule", bucketsNode(d.DefaultRule))
	}
	return m.Node()
}

func bucketsNode(bs []splitmodel.Bucket) *yaml.Node {
	items := make([]*yaml.Node, len(bs))
	for i, b := range bs {
		bm := export.NewMapping()
		bm.Add("treatment", export.Str(b.Treatment))
		bm.Add("size", export.IntNode(int64(b.Size)))
		bm.Node().Style = yaml.FlowStyle
		items[i] = bm.Node()
	}
	return export.Seq(items...)
}

func matcherNode(mt splitmodel.Matcher) *yaml.Node {
	m := export.NewMapping()
	m.Add("type", export.Str(mt.Type))
	if mt.Negate {
		m.Add("negate", export.BoolNode(true))
	}
	if mt.Attribute != "" {
		m.Add("attribute", export.Str(mt.Attribute))
	}
	if mt.String != "" {
		m.Add("string", export.Str(mt.String))
	}
	if mt.Bool != nil {
		m.Add("bool", export.BoolNode(*mt.Bool))
	}
	if len(mt.Strings) > 0 {
		m.Add("strings", export.StrSeq(mt.Strings))
	}
	if mt.Number != nil {
		m.Add("number", export.FloatNode(*mt.Number))
	}
	if mt.Date != nil {
		m.Add("date", export.IntNode(*mt.Date))
	}
	if mt.Between != nil {
		b := export.NewMapping()
		b.Add("from", export.FloatNode(mt.Between.From))
		b.Add("to", export.FloatNode(mt.Between.To))
		b.Node().Style = yaml.FlowStyle
		m.Add("between", b.Node())
	}
	if mt.Depends != nil {
		d := export.NewMapping()
		d.Add("splitName", export.Str(mt.Depends.SplitName))
		d.Add("treatment", export.Str(mt.Depends.Treatment))
		d.Node().Style = yaml.FlowStyle
		m.Add("depends", d.Node())
	}
	if len(m.Node().Content) <= 8 {
		m.Node().Style = yaml.FlowStyle
	}
	return m.Node()
}

// VerifySplit loads the exported files as flagsync loads a Split repository (in memory)
// and plans them against the live flags they were built from: the check is OK when they
// are valid and plan to nothing.
func Verify(e *export.Export, w *Workspace) (*export.Check, error) {
	fsys := fstest.MapFS{}
	for _, f := range e.Files {
		fsys[path.Clean(f.Path)] = &fstest.MapFile{Data: f.Data, Mode: 0o644}
	}
	desired, err := splitload.Load(fsys, ".")
	var invalid *diag.InvalidError
	if errors.As(err, &invalid) {
		return &export.Check{Diagnostics: invalid.Diagnostics}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify export: %w", err)
	}
	p, err := splitplan.Compute(desired, w.Flags, splitplan.OptionsFor(desired.Settings))
	if err != nil {
		return nil, fmt.Errorf("verify export: %w", err)
	}
	return &export.Check{Plan: p}, nil
}

// splitTagSet is the flag's tags sorted, without duplicates and without flagsync's
// ownership tag, which the planner never shows as drift.
func tagSet(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t != splitmodel.OwnershipTag {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
