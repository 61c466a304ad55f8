package unleashexport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/flagsync/flagsync/internal/diag"
	"github.com/flagsync/flagsync/internal/export"
	"github.com/flagsync/flagsync/internal/flagrepo"
	unleashclient "github.com/flagsync/flagsync/internal/unleash/client"
	unleashload "github.com/flagsync/flagsync/internal/unleash/load"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
	unleashplan "github.com/flagsync/flagsync/internal/unleash/plan"
	"github.com/flagsync/flagsync/schema"
)

// Reader reads live projects; *unleashclient.Client is one.
type Reader interface {
	ReadProjects(ctx context.Context, projects []string, opts unleashclient.ReadOptions) (*unleashmodel.Live, error)
}

// Read reads everything an export writes: each project's flag list, every flag with
// strategies (one GET each) and the segment list when a strategy uses one.
func Read(ctx context.Context, r Reader, projects []string) (*unleashmodel.Live, error) {
	live, err := r.ReadProjects(ctx, projects, unleashclient.ReadOptions{})
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return live, nil
}

// Build renders the live projects as an Unleash repository. One project: a file per flag at
// the root, without project, and flagsync.yaml naming the project. Several: a folder per
// project, each file naming its project. flagsync.yaml says vendor: unleash, lists the
// environments (development, staging, production first, then alphabetically) and prune:
// false. A flag's file lists every environment of its project; defaults Unleash fills in
// (a flexible rollout's rollout 100, stickiness default and groupId equal to the flag's
// name, variable weights) and flagsync's ownership tag are left out. The same live state
// always gives byte-identical files.
func Build(live *unleashmodel.Live, opts export.Options) (*export.Export, error) {
	e := &export.Export{}
	var envs []string
	for _, p := range live.Projects {
		e.Scopes = append(e.Scopes, p.Name)
		for _, env := range p.Environments {
			if !slices.Contains(envs, env) {
				envs = append(envs, env)
			}
		}
	}
	envs = export.OrderEnvironments(envs)
	single := len(live.Projects) == 1
	var files []export.File
	seen := map[string]unleashmodel.Ref{}
	for _, p := range live.Projects {
		flags := slices.Clone(p.Flags)
		slices.SortFunc(flags, func(a, b unleashmodel.Flag) int { return strings.Compare(a.Name, b.Name) })
		for i := range flags {
			f := &flags[i]
			f.Project = p.Name
			ref := f.Ref()
			for env, n := range f.LegacyVariants {
				e.Notes = append(e.Notes, fmt.Sprintf("%s: %d feature variants in %s left out (deprecated in Unleash 8; flagsync leaves them alone)", ref, n, env))
			}
			doc, err := flagDocument(f, !single, export.OrderEnvironments(p.Environments))
			if err != nil {
				return nil, fmt.Errorf("export flag %s: %w", ref, err)
			}
			name := fileName(f.Name)
			path, depth := name, 0
			if !single {
				path, depth = p.Name+"/"+name, 1
			}
			if prev, dup := seen[strings.ToLower(path)]; dup {
				return nil, fmt.Errorf("export flags %s and %s: both would be written to %s", prev, ref, path)
			}
			seen[strings.ToLower(path)] = ref
			data, err := withHeader(doc, header(opts.Schema, schema.UnleashFlagName, depth, "Exported from Unleash project "+p.Name+" by flagsync export."))
			if err != nil {
				return nil, fmt.Errorf("export flag %s: %w", ref, err)
			}
			addr := unleashplan.AddressOf(ref, "")
			files = append(files, export.File{Path: path, Data: data, Flag: &addr})
			e.Flags++
		}
	}
	slices.Sort(e.Notes)
	m := newMapping()
	m.comment("vendor", str(unleashmodel.Vendor), "Every flag file here is an Unleash flag.")
	if single {
		m.comment("project", str(live.Projects[0].Name), "Default project of the flag files.")
	}
	if len(envs) > 0 {
		m.comment("environments", strSeq(envs), "The environments the flags configure, in the order flagsync applies changes.")
	}
	m.comment("prune", boolNode(false), "Archive flags whose file is removed (only flags tagged "+unleashmodel.OwnershipTag+"; never deleted). Off: such flags are reported and left alone.")
	data, err := withHeader(m.n, header(opts.Schema, schema.UnleashSettingsName, 0, "Exported from Unleash by flagsync export."))
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", flagrepo.SettingsFile, err)
	}
	e.Files = append([]export.File{{Path: flagrepo.SettingsFile, Data: data}}, files...)
	return e, nil
}

// fileName is a flag's file name: its name (URL-friendly, so a valid file name), with a
// leading '.' escaped, since the loader skips dot-files.
func fileName(name string) string {
	if strings.HasPrefix(name, ".") {
		name = "_" + name
	}
	return name + ".yaml"
}

// flagDocument builds one flag's YAML.
func flagDocument(f *unleashmodel.Flag, withProject bool, envs []string) (*yaml.Node, error) {
	m := newMapping()
	if withProject {
		m.add("project", str(f.Project))
	}
	m.add("name", str(f.Name))
	if t := f.FeatureType(); t != unleashmodel.DefaultFeatureType {
		m.add("type", str(t))
	}
	if f.Description != "" {
		m.add("description", str(f.Description))
	}
	if f.ImpressionData {
		m.add("impressionData", boolNode(true))
	}
	var tags []string
	for _, t := range f.Tags {
		if t != unleashmodel.OwnershipTag {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	if len(tags) > 0 {
		m.add("tags", strSeq(tags))
	}
	em := newMapping()
	for _, env := range envs {
		e, ok := f.Environments[env]
		if !ok {
			continue
		}
		if e.Unread {
			return nil, fmt.Errorf("the strategies of %s were not read", env)
		}
		one := newMapping()
		one.add("enabled", boolNode(e.Enabled))
		if len(e.Strategies) > 0 {
			var items []*yaml.Node
			for i := range e.Strategies {
				items = append(items, strategyNode(unleashmodel.NormaliseStrategy(e.Strategies[i], f.Name), f.Name))
			}
			one.add("strategies", seq(items...))
		}
		em.add(env, one.n)
	}
	if em.len() > 0 {
		m.add("environments", em.n)
	}
	return m.n, nil
}

// strategyNode writes a normalised strategy without the defaults Unleash fills in.
func strategyNode(s unleashmodel.Strategy, flagName string) *yaml.Node {
	m := newMapping()
	m.add("name", str(s.Name))
	if s.Title != "" {
		m.add("title", str(s.Title))
	}
	if s.Disabled {
		m.add("disabled", boolNode(true))
	}
	if params := parametersNode(s, flagName); params.len() > 0 {
		m.add("parameters", params.n)
	}
	if len(s.Constraints) > 0 {
		m.add("constraints", constraintsNode(s.Constraints))
	}
	if len(s.Segments) > 0 {
		m.add("segments", strSeq(s.Segments))
	}
	if len(s.Variants) > 0 {
		m.add("variants", variantsNode(s.Variants))
	}
	return m.n
}

// parametersNode writes a strategy's parameters in flow style, without a flexible
// rollout's defaults (rollout 100, stickiness default, groupId the flag's name); a whole
// rollout is written as a number.
func parametersNode(s unleashmodel.Strategy, flagName string) mapping {
	params := newMapping()
	params.n.Style = yaml.FlowStyle
	for _, k := range sortedKeys(s.Parameters) {
		v := s.Parameters[k]
		if s.Name == unleashmodel.StrategyFlexibleRollout &&
			(k == "rollout" && v == "100" || k == "stickiness" && v == unleashmodel.DefaultStickiness || k == "groupId" && v == flagName) {
			continue
		}
		if n, err := strconv.Atoi(v); err == nil && k == "rollout" && strconv.Itoa(n) == v {
			params.add(k, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: v})
			continue
		}
		params.add(k, str(v))
	}
	return params
}

// constraintsNode writes constraints, one flow mapping each, without the flags that are
// false.
func constraintsNode(cs []unleashmodel.Constraint) *yaml.Node {
	var items []*yaml.Node
	for _, c := range cs {
		cm := newMapping()
		cm.add("contextName", str(c.ContextName))
		cm.add("operator", str(c.Operator))
		if len(c.Values) > 0 {
			cm.add("values", strSeq(c.Values))
		}
		if c.Value != "" {
			cm.add("value", str(c.Value))
		}
		if c.CaseInsensitive {
			cm.add("caseInsensitive", boolNode(true))
		}
		if c.Inverted {
			cm.add("inverted", boolNode(true))
		}
		cm.n.Style = yaml.FlowStyle
		items = append(items, cm.n)
	}
	return seq(items...)
}

// variantsNode writes strategy variants: a weight only for a fix one (Unleash computes
// the variable ones), stickiness only when not the default.
func variantsNode(vs []unleashmodel.Variant) *yaml.Node {
	var items []*yaml.Node
	for _, v := range vs {
		vm := newMapping()
		vm.add("name", str(v.Name))
		if v.WeightType == unleashmodel.WeightFix {
			vm.add("weightType", str(v.WeightType))
			vm.add("weight", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v.Weight)})
		}
		if v.Stickiness != unleashmodel.DefaultStickiness {
			vm.add("stickiness", str(v.Stickiness))
		}
		if v.Payload != nil {
			pm := newMapping()
			pm.add("type", str(v.Payload.Type))
			pm.add("value", str(v.Payload.Value))
			pm.n.Style = yaml.FlowStyle
			vm.add("payload", pm.n)
		}
		items = append(items, vm.n)
	}
	return seq(items...)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Verify loads the exported files the way flagsync loads a repository (in memory) and plans
// them against the live state they were built from: the files are right when the check is
// OK (valid, no change, no unmanaged flag). Notes are not counted: the only one an export
// can meet is on feature variants, which flag files cannot hold (see Export.Notes). A
// refusal of the planner (a segment or an environment Unleash lacks, which an export of
// live flags never writes) is an error.
func Verify(e *export.Export, live *unleashmodel.Live) (*export.Check, error) {
	fsys := fstest.MapFS{}
	for _, f := range e.Files {
		fsys[f.Path] = &fstest.MapFile{Data: f.Data, Mode: 0o644}
	}
	desired, err := unleashload.Load(fsys, ".")
	var invalid *diag.InvalidError
	if errors.As(err, &invalid) {
		return &export.Check{Diagnostics: invalid.Diagnostics}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify export: %w", err)
	}
	p, err := unleashplan.Compute(desired, live, unleashplan.OptionsFor(desired))
	if err != nil {
		return nil, fmt.Errorf("verify export: %w", err)
	}
	return &export.Check{Plan: p}, nil
}

// --- YAML ---------------------------------------------------------------------------

type mapping struct{ n *yaml.Node }

func newMapping() mapping { return mapping{&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}} }

func (m mapping) add(key string, v *yaml.Node) { m.n.Content = append(m.n.Content, str(key), v) }

func (m mapping) comment(key string, v *yaml.Node, comment string) {
	k := str(key)
	k.HeadComment = comment
	m.n.Content = append(m.n.Content, k, v)
}

func (m mapping) len() int { return len(m.n.Content) / 2 }

func seq(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items}
}

func strSeq(ss []string) *yaml.Node {
	items := make([]*yaml.Node, len(ss))
	for i, s := range ss {
		items[i] = str(s)
	}
	n := seq(items...)
	n.Style = yaml.FlowStyle
	return n
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

// str is a string scalar, double-quoted when a YAML reader could take it for something
// else (yaml.v3's encoder is the judge, YAML 1.1 booleans included) or it starts like a
// date; multi-line text is left to the emitter.
func str(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if strings.Contains(s, "\n") {
		return n
	}
	out, err := yaml.Marshal(s)
	switch {
	case s == "" || err != nil || bytes.HasPrefix(out, []byte(`"`)) || looksLikeDate(s):
		n.Style = yaml.DoubleQuotedStyle
	case strings.ContainsAny(s, "[]{},") && !strings.Contains(s, "'"):
		// Plain in a block, but not in a flow collection: single quotes keep JSON readable.
		n.Style = yaml.SingleQuotedStyle
	case strings.ContainsAny(s, "[]{},"):
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

func looksLikeDate(s string) bool {
	return len(s) >= 8 && s[4] == '-' && strings.Trim(s[:4], "0123456789") == ""
}

// header is the comment lines a file starts with.
func header(schemaDir, schemaName string, depth int, line string) []string {
	var out []string
	if schemaDir != "" {
		loc := strings.TrimSuffix(schemaDir, "/") + "/" + schemaName
		if !strings.Contains(schemaDir, "://") && !strings.HasPrefix(schemaDir, "/") {
			loc = strings.Repeat("../", depth) + loc
		}
		out = append(out, "yaml-language-server: $schema="+loc)
	}
	return append(out, line)
}

// withHeader encodes root with two-space indentation after the header comment lines.
func withHeader(root *yaml.Node, lines []string) ([]byte, error) {
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString("# " + l + "\n")
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	return buf.Bytes(), nil
}
