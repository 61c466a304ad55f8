package kexport

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/export"
	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
	kplan "github.com/flagsync/flagsync/internal/kameleoon/plan"
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
func Build(sites []Site, opts export.Options) (*export.Export, error) {
	var settings kmodel.Settings
	e := &export.Export{}
	multi := len(sites) > 1
	envs := map[string]bool{}
	var flagFiles []export.File
	seenSite := map[string]bool{}
	for _, s := range sites {
		if seenSite[s.Code] {
			return nil, fmt.Errorf("export: site %s is listed twice", s.Code)
		}
		seenSite[s.Code] = true
		if multi && !export.SafeName.MatchString(s.Code) {
			return nil, fmt.Errorf("export site %q: the site code cannot be a folder name", s.Code)
		}
		e.Scopes = append(e.Scopes, s.Code)
		flags, dups := uniqueFlags(s)
		for _, ref := range dups {
			e.Notes = append(e.Notes, fmt.Sprintf("%s: the API listed this flag more than once; the one with the lowest id was exported", ref))
		}
		for i := range flags {
			f := &flags[i]
			if !export.SafeName.MatchString(f.FeatureKey) {
				return nil, fmt.Errorf("export flag %s/%s: the feature key cannot be a file name", s.Code, f.FeatureKey)
			}
			dir := "."
			if multi {
				dir = s.Code
			}
			p := path.Join(dir, export.FileName(f.FeatureKey))
			doc, notes, err := flagDocument(f, s.Code, multi)
			if err != nil {
				return nil, fmt.Errorf("export flag %s/%s: %w", s.Code, f.FeatureKey, err)
			}
			data, err := export.WithHeader(doc, export.HeaderLines(opts.Schema, loaderSchemaFlag, export.Depth(p), fmt.Sprintf("Exported from Kameleoon site %s by flagsync export.", s.Code)))
			if err != nil {
				return nil, fmt.Errorf("export flag %s/%s: %w", s.Code, f.FeatureKey, err)
			}
			ref := kmodel.Ref{SiteCode: s.Code, FeatureKey: f.FeatureKey}
			addr := kplan.AddressOf(ref, "")
			flagFiles = append(flagFiles, export.File{Path: p, Data: data, Flag: &addr})
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
		settings.SiteCode = sites[0].Code
	}
	keys := make([]string, 0, len(envs))
	for k := range envs {
		keys = append(keys, k)
	}
	settings.Environments = export.OrderEnvironments(keys)
	sf, err := settingsFile(settings, e.Scopes, opts.Schema)
	if err != nil {
		return nil, err
	}
	e.Files = append([]export.File{sf}, flagFiles...)
	return e, nil
}

// The schema file names the yaml-language-server comments point at.
const (
	loaderSchemaFlag     = "flag.schema.json"
	loaderSchemaSettings = "settings.schema.json"
)

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
