package unleashmodel

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Vendor is the value of the vendor key (in flagsync.yaml or in a flag file) that makes
// files Unleash flag files.
const Vendor = "unleash"

// Service names Unleash in plans, logs and reports.
const Service = "Unleash"

// DefaultProject is the project of a flag file that names none when flagsync.yaml sets no
// default: the project every Unleash instance has (and the only one of the open-source
// server).
const DefaultProject = "default"

// The ownership marker: flagsync tags every flag it creates with simple:managed-by-flagsync
// (the tag type every Unleash instance has, and the text every vendor's marker has), and
// prunes only flags that carry it.
const (
	OwnershipTagType  = "simple"
	OwnershipTagValue = "managed-by-flagsync"
	OwnershipTag      = OwnershipTagType + ":" + OwnershipTagValue
)

// Flag is one Unleash feature flag. JSON names are the admin API's own and the flag file's;
// Environments is keyed by environment name. Read from Unleash, Strategies carry their ids
// and sort orders; read from Git, Source says where the flag is defined.
type Flag struct {
	Vendor         string                 `json:"vendor,omitempty"`  // "unleash"; files only
	Project        string                 `json:"project,omitempty"` // the project id
	Name           string                 `json:"name"`
	Type           string                 `json:"type,omitempty"` // "" means DefaultFeatureType
	Description    string                 `json:"description,omitempty"`
	ImpressionData bool                   `json:"impressionData,omitempty"`
	Tags           []string               `json:"tags,omitempty"`     // "type:value"
	Archived       bool                   `json:"archived,omitempty"` // Git: archive it; live: it is archived
	Ignore         []string               `json:"ignore,omitempty"`   // ignore paths of this flag; files only
	Environments   map[string]Environment `json:"environments,omitempty"`

	// Owner, Expires (a date, YYYY-MM-DD, as written) and Permanent are flagsync's own
	// metadata of a flag file (flagsync report, policies): never sent to Unleash. Files
	// only.
	Owner     string `json:"owner,omitempty"`
	Expires   string `json:"expires,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`

	// CreatedAt and Stale are Unleash's own (read-only): when the flag was created (as
	// Unleash writes it, RFC 3339) and whether it is marked stale. Live flags only.
	CreatedAt string `json:"-"`
	Stale     bool   `json:"-"`

	// Source is where a desired flag was read from (empty for live flags).
	Source Source `json:"-"`
	// LegacyVariants counts, per environment, the flag's feature (environment) variants in
	// Unleash: deprecated in Unleash 8 in favour of strategy variants, not in flag files,
	// and left alone. Live flags only.
	LegacyVariants map[string]int `json:"-"`
}

// Environment is a flag's configuration in one environment.
type Environment struct {
	Enabled    bool       `json:"enabled,omitempty"`
	Strategies []Strategy `json:"strategies,omitempty"`

	// Unread is set on a live environment whose strategies exist but were not read (the
	// reader skipped a flag flagsync does not plan); Strategies is then empty.
	Unread bool `json:"-"`
}

// Strategy is one activation strategy. Name is its type (see StrategyTypes). A strategy has
// no name of its own: within an environment it is identified by Title when that is set,
// else by its position among the environment's untitled strategies (see MatchStrategies).
type Strategy struct {
	Name        string            `json:"name"`
	Title       string            `json:"title,omitempty"`
	Disabled    bool              `json:"disabled,omitempty"`
	Parameters  map[string]string `json:"parameters,omitempty"`
	Constraints []Constraint      `json:"constraints,omitempty"`
	Segments    []string          `json:"segments,omitempty"` // segment names; ids on the wire
	Variants    []Variant         `json:"variants,omitempty"`

	// ID and SortOrder are Unleash's; set only on strategies read from the API.
	ID        string `json:"-"`
	SortOrder int    `json:"-"`
}

// Constraint limits a strategy to contexts whose field ContextName compares to Values (the
// multi-value operators) or Value (the single-value ones) by Operator.
type Constraint struct {
	ContextName     string   `json:"contextName"`
	Operator        string   `json:"operator"`
	Values          []string `json:"values,omitempty"`
	Value           string   `json:"value,omitempty"`
	CaseInsensitive bool     `json:"caseInsensitive,omitempty"`
	Inverted        bool     `json:"inverted,omitempty"`
}

// Variant is one strategy variant. Weight counts in thousandths; a variable variant's weight
// is computed by Unleash (see FixWeights).
type Variant struct {
	Name       string   `json:"name"`
	Weight     int      `json:"weight,omitempty"`
	WeightType string   `json:"weightType,omitempty"` // "" means WeightVariable
	Stickiness string   `json:"stickiness,omitempty"` // "" means DefaultStickiness
	Payload    *Payload `json:"payload,omitempty"`
}

// Payload is the data a variant carries.
type Payload struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Source is a position in the flag repository.
type Source struct {
	File string // path relative to the repository root, slash-separated
	Line int    // of the flag's name
	Col  int
}

// Ref identifies an Unleash flag: its project and its name.
type Ref struct {
	Project string
	Name    string
}

// String renders the ref as project/name.
func (r Ref) String() string { return r.Project + "/" + r.Name }

// CompareRefs orders flags by project, then name: the order of a plan's flags.
func CompareRefs(a, b Ref) int {
	return cmp.Or(strings.Compare(a.Project, b.Project), strings.Compare(a.Name, b.Name))
}

// Ref returns the flag's identity.
func (f *Flag) Ref() Ref { return Ref{Project: f.Project, Name: f.Name} }

// EnvironmentNames returns the flag's environment names sorted alphabetically.
func (f *Flag) EnvironmentNames() []string {
	keys := make([]string, 0, len(f.Environments))
	for k := range f.Environments {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// FeatureType returns the flag's type, DefaultFeatureType when unset.
func (f *Flag) FeatureType() string {
	if f.Type == "" {
		return DefaultFeatureType
	}
	return f.Type
}

// HasTag reports whether the flag carries tag ("type:value").
func (f *Flag) HasTag(tag string) bool { return slices.Contains(f.Tags, tag) }

// SplitTag splits "type:value" at the first colon; ok is false when there is none.
func SplitTag(tag string) (typ, value string, ok bool) { return strings.Cut(tag, ":") }

// StrategyPath names a strategy in field paths and ignore paths: strategies[title=beta]
// for a titled strategy, strategies[2] (its position in its list) for an untitled one.
func StrategyPath(s *Strategy, index int) string {
	if s.Title != "" {
		return "strategies[title=" + QuoteKey(s.Title) + "]"
	}
	return "strategies[" + strconv.Itoa(index) + "]"
}

// QuoteKey writes a key for a field path selector: as it is, or Go-quoted when it is empty,
// has leading or trailing spaces, or holds '[', ']', '=' or '"'.
func QuoteKey(key string) string {
	if key == "" || strings.ContainsAny(key, `[]="`) || strings.TrimSpace(key) != key {
		return strconv.Quote(key)
	}
	return key
}

// Settings are the settings of an Unleash repository (flagsync.yaml with vendor: unleash).
type Settings struct {
	Vendor       string   `json:"vendor,omitempty"`
	Project      string   `json:"project,omitempty"`      // default project of flag files
	Environments []string `json:"environments,omitempty"` // known environments, in apply order
	Segments     []string `json:"segments,omitempty"`     // known segment names (checked offline)
	Prune        bool     `json:"prune,omitempty"`
	Ignore       []string `json:"ignore,omitempty"` // ignore paths of every flag
}

// Desired is every Unleash flag of a repository, validated.
type Desired struct {
	Revision     string
	Settings     Settings
	SettingsFile string // the settings file's path; "" when the settings are not Unleash's
	Flags        []Flag // sorted by project, then name
}

// Projects returns the projects the flags and settings name, sorted.
func (d *Desired) Projects() []string {
	var out []string
	if d.Settings.Project != "" {
		out = append(out, d.Settings.Project)
	}
	for i := range d.Flags {
		out = append(out, d.Flags[i].Project)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// EnvironmentNames returns the environments the repository manages: the settings' list,
// then every other environment a flag names, alphabetically.
func (d *Desired) EnvironmentNames() []string {
	out := slices.Clone(d.Settings.Environments)
	var rest []string
	for i := range d.Flags {
		for k := range d.Flags[i].Environments {
			if !slices.Contains(out, k) && !slices.Contains(rest, k) {
				rest = append(rest, k)
			}
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// Project is the live state of one Unleash project as flagsync reads it.
type Project struct {
	Name string
	// Flags are the project's active (not archived) flags, sorted by name.
	Flags []Flag
	// Archived names the project's archived flags, when they were looked up
	// (ArchivedRead); flagsync revives one that Git lists again.
	Archived     []string
	ArchivedRead bool
	// Environments are the environments enabled for the project, as the flags show them;
	// nil when the project has no flag to show them.
	Environments []string
}

// Live is what flagsync read from Unleash for one run.
type Live struct {
	Projects []Project
	// SegmentIDs maps segment names to their ids (nil when no segment was read: no strategy
	// read or desired uses one).
	SegmentIDs map[string]int
}

// Project returns the live project named name, or nil.
func (l *Live) Project(name string) *Project {
	if l == nil {
		return nil
	}
	for i := range l.Projects {
		if l.Projects[i].Name == name {
			return &l.Projects[i]
		}
	}
	return nil
}

// MatchStrategies pairs Git's strategies of one environment with Unleash's (both
// normalised): it returns, for each of desired, the index of its live strategy, or -1 when
// it has none (it is new). Live strategies left unpaired are the ones Git removed.
//
// A titled strategy is the live strategy with the same title (the first in live order, if
// Unleash has several). Untitled strategies are paired in two passes: first those equal to
// a live untitled strategy, as many as keep their order (a longest common subsequence);
// then, between two such pairs, the rest by position. So a titled strategy keeps its id
// whatever else changes; removing or inserting an untitled strategy is one delete or one
// add; but editing an untitled strategy in the same change as inserting one before it can
// pair it with its neighbour (both are then rewritten in place), and giving a strategy its
// first title replaces it (a new id). Titles are the way to keep ids.
func MatchStrategies(desired, live []Strategy) []int {
	out := make([]int, len(desired))
	titled := map[string]int{}
	var lu, du []int // indexes of the untitled strategies
	for j := range live {
		if t := live[j].Title; t != "" {
			if _, dup := titled[t]; !dup {
				titled[t] = j
			}
		} else {
			lu = append(lu, j)
		}
	}
	for i := range desired {
		out[i] = -1
		if t := desired[i].Title; t != "" {
			if j, ok := titled[t]; ok {
				out[i] = j
				delete(titled, t)
			}
			continue
		}
		du = append(du, i)
	}
	equal := func(a, b int) bool { return sameStrategy(&desired[du[a]], &live[lu[b]]) }
	anchors := append(lcs(len(du), len(lu), equal), [2]int{len(du), len(lu)})
	a, b := 0, 0
	for _, an := range anchors {
		for k := range min(an[0]-a, an[1]-b) {
			out[du[a+k]] = lu[b+k]
		}
		if an[0] < len(du) {
			out[du[an[0]]] = lu[an[1]]
		}
		a, b = an[0]+1, an[1]+1
	}
	return out
}

// sameStrategy compares two strategies without their ids and sort orders.
func sameStrategy(a, b *Strategy) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// lcs returns the index pairs of a longest common subsequence of two lists of n and m
// items, equal telling whether item i of the first equals item j of the second.
func lcs(n, m int, equal func(i, j int) bool) [][2]int {
	t := make([][]int, n+1)
	for i := range t {
		t[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if equal(i, j) {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	var out [][2]int
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case equal(i, j):
			out = append(out, [2]int{i, j})
			i, j = i+1, j+1
		case t[i+1][j] >= t[i][j+1]:
			i++
		default:
			j++
		}
	}
	return out
}
