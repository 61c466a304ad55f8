package export

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/flagrepo"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

// Lister reads the live flags of one site; *kclient.Client is one.
type Lister interface {
	ListFlags(ctx context.Context, siteCode string) ([]kmodel.Flag, error)
}

// Site is the live flags of one site.
type Site struct {
	Code  string
	Flags []kmodel.Flag
}

// Read lists the live flags of each site: one list per site (paged by the client),
// never one read per flag.
func Read(ctx context.Context, l Lister, siteCodes []string) ([]Site, error) {
	sites := make([]Site, 0, len(siteCodes))
	for _, code := range siteCodes {
		flags, err := l.ListFlags(ctx, code)
		if err != nil {
			return nil, fmt.Errorf("export site %s: %w", code, err)
		}
		sites = append(sites, Site{Code: code, Flags: flags})
	}
	return sites, nil
}

// Options shape the exported files.
type Options struct {
	// Schema is where each file's yaml-language-server comment points editors for
	// validation as you type: the URL of a folder holding flag.schema.json and
	// settings.schema.json, or that folder's slash-separated path relative to the output
	// folder (each file then gets a path relative to itself). Empty: no such comment.
	Schema string
}

// File is one file of an export.
type File struct {
	Path string      // slash-separated, relative to the output folder
	Data []byte      // the file's content
	Flag *kmodel.Ref // the flag the file holds; nil for flagsync.yaml
}

// Export is a set of flag files that describe live flags exactly.
type Export struct {
	// Files are flagsync.yaml first, then one file per flag, by site code and feature key.
	Files []File
	// Settings are what flagsync.yaml holds.
	Settings kmodel.Settings
	// Sites are the exported site codes, in the order asked for.
	Sites []string
	// Flags counts the exported flags; Archived, those of them that are archived.
	Flags, Archived int
	// Notes say what was left out of the files and why, for people.
	Notes []string
}

// DefaultEnvironmentOrder is the order environments are written in when present;
// other environment keys follow alphabetically.
var DefaultEnvironmentOrder = []string{"development", "staging", "production"}

// Build renders the live flags of sites as flag files.
//
// The layout depends on how many sites are exported. One site: a file per flag at the
// root of the output folder, without siteCode, and flagsync.yaml naming the site as the
// default siteCode. Several sites: a folder per site code, each flag file naming its
// siteCode, and flagsync.yaml without one. In both, a flag's file is named after its
// feature key (<featureKey>.yaml), and flagsync.yaml lists every environment the flags
// use, development, staging and production first.
//
// The output depends only on the flags (not on the time or on the order the API listed
// them in): exporting the same live state twice gives byte-identical files.
func Build(sites []Site, opts Options) (*Export, error) {
	e := &Export{}
	multi := len(sites) > 1
	envs := map[string]bool{}
	var flagFiles []File
	seenSite := map[string]bool{}
	for _, s := range sites {
		if seenSite[s.Code] {
			return nil, fmt.Errorf("export: site %s is listed twice", s.Code)
		}
		seenSite[s.Code] = true
		if multi && !safeName.MatchString(s.Code) {
			return nil, fmt.Errorf("export site %q: the site code cannot be a folder name", s.Code)
		}
		e.Sites = append(e.Sites, s.Code)
		flags, dups := uniqueFlags(s)
		for _, ref := range dups {
			e.Notes = append(e.Notes, fmt.Sprintf("%s: the API listed this flag more than once; the one with the lowest id was exported", ref))
		}
		for i := range flags {
			f := &flags[i]
			if !safeName.MatchString(f.FeatureKey) {
				return nil, fmt.Errorf("export flag %s/%s: the feature key cannot be a file name", s.Code, f.FeatureKey)
			}
			dir := "."
			if multi {
				dir = s.Code
			}
			p := path.Join(dir, fileName(f.FeatureKey))
			doc, notes, err := flagDocument(f, s.Code, multi)
			if err != nil {
				return nil, fmt.Errorf("export flag %s/%s: %w", s.Code, f.FeatureKey, err)
			}
			data, err := withHeader(doc, headerLines(opts.Schema, loaderSchemaFlag, depth(p), fmt.Sprintf("Exported from Kameleoon site %s by flagsync export.", s.Code)))
			if err != nil {
				return nil, fmt.Errorf("export flag %s/%s: %w", s.Code, f.FeatureKey, err)
			}
			ref := kmodel.Ref{SiteCode: s.Code, FeatureKey: f.FeatureKey}
			flagFiles = append(flagFiles, File{Path: p, Data: data, Flag: &ref})
			for _, n := range notes {
				e.Notes = append(e.Notes, fmt.Sprintf("%s: %s", ref, n))
			}
			for k, env := range f.Environments {
				if env.DefaultVariationKey != "" {
					envs[k] = true
				}
			}
			e.Flags++
			if f.Archived {
				e.Archived++
			}
		}
	}

	if !multi && len(sites) == 1 {
		e.Settings.SiteCode = sites[0].Code
	}
	keys := make([]string, 0, len(envs))
	for k := range envs {
		keys = append(keys, k)
	}
	e.Settings.Environments = orderEnvironments(keys)
	settings, err := settingsFile(e.Settings, e.Sites, opts.Schema)
	if err != nil {
		return nil, err
	}
	e.Files = append([]File{settings}, flagFiles...)
	return e, nil
}

// The schema file names the yaml-language-server comments point at.
const (
	loaderSchemaFlag     = "flag.schema.json"
	loaderSchemaSettings = "settings.schema.json"
)

// safeName is what a feature key or site code must look like to be used as a file or
// folder name: no separators, no leading dot.
var safeName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]*$`)

// fileName is the flag file's name. A flag whose key is "flagsync" gets another name,
// since flagsync.yaml is the settings file.
func fileName(featureKey string) string {
	name := featureKey + ".yaml"
	if name == flagrepo.SettingsFile || name == "flagsync.yml" {
		return featureKey + ".flag.yaml"
	}
	return name
}

// depth counts the folders between the output folder and the file at p.
func depth(p string) int { return strings.Count(p, "/") }

// uniqueFlags returns the site's flags sorted by feature key, one per key (the lowest
// id, as the planner does), and the refs listed more than once.
func uniqueFlags(s Site) ([]kmodel.Flag, []kmodel.Ref) {
	flags := slices.Clone(s.Flags)
	slices.SortStableFunc(flags, func(a, b kmodel.Flag) int {
		return cmp.Or(strings.Compare(a.FeatureKey, b.FeatureKey), cmp.Compare(a.ID, b.ID))
	})
	var dups []kmodel.Ref
	out := flags[:0]
	for _, f := range flags {
		if len(out) > 0 && out[len(out)-1].FeatureKey == f.FeatureKey {
			ref := kmodel.Ref{SiteCode: s.Code, FeatureKey: f.FeatureKey}
			if !slices.Contains(dups, ref) {
				dups = append(dups, ref)
			}
			continue
		}
		out = append(out, f)
	}
	return out, dups
}

// orderEnvironments sorts environment keys: those of DefaultEnvironmentOrder first, in
// that order, then the others alphabetically.
func orderEnvironments(keys []string) []string {
	rank := func(k string) int {
		if i := slices.Index(DefaultEnvironmentOrder, k); i >= 0 {
			return i
		}
		return len(DefaultEnvironmentOrder)
	}
	out := slices.Clone(keys)
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
	})
	return out
}

// headerLines are the comment lines a file starts with: the schema reference for
// editors, if any, and what the file is.
func headerLines(schema, schemaFile string, depth int, what string) []string {
	var lines []string
	if ref := schemaRef(schema, schemaFile, depth); ref != "" {
		lines = append(lines, "yaml-language-server: $schema="+ref)
	}
	return append(lines, what)
}

// schemaRef is where a file depth folders below the output folder finds schemaFile.
func schemaRef(schema, schemaFile string, depth int) string {
	switch {
	case schema == "":
		return ""
	case strings.Contains(schema, "://"):
		return strings.TrimSuffix(schema, "/") + "/" + schemaFile
	}
	parts := make([]string, 0, depth+2)
	for range depth {
		parts = append(parts, "..")
	}
	return path.Join(append(parts, schema, schemaFile)...)
}
