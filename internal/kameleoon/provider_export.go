package kameleoon

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flagsync/flagsync/internal/export"
	kexport "github.com/flagsync/flagsync/internal/kameleoon/export"
	"github.com/flagsync/flagsync/internal/provider"
)

// siteCodeLen is the length of every Kameleoon site code (the flag schema's siteCode).
const siteCodeLen = 10

// ExportUsage says what a Kameleoon export writes.
func (kprovider) ExportUsage() provider.Usage {
	return provider.Usage{Text: `--vendor kameleoon reads each --site-code's flags (one list call per site) and writes:

  one site:     DIR/flagsync.yaml (siteCode, environments), DIR/<featureKey>.yaml
  several:      DIR/flagsync.yaml (environments), DIR/<siteCode>/<featureKey>.yaml`,
		Examples: []string{
			"flagsync export --site-code pzllysfw2f",
			"flagsync export --site-code pzllysfw2f,k3mx9q2b7a --out flags",
			"flagsync export --sandbox --site-code pzllysfw2f --out flags --force",
		}}
}

// ExportFlags are export's flags for Kameleoon: the sites to export.
func (kprovider) ExportFlags() []provider.Flag {
	return []provider.Flag{
		{Name: "site-code", Default: []string(nil), Usage: "site code to export (Admin > Projects in Kameleoon); repeat it or separate codes with commas"},
	}
}

// CheckExport checks the site codes.
func (kprovider) CheckExport(v provider.Values) error {
	sites := v.List("site-code")
	if len(sites) == 0 {
		return provider.Usagef("--site-code is required")
	}
	for _, code := range sites {
		if len(code) != siteCodeLen {
			return provider.Usagef("--site-code: %q is not a site code (they have %d characters)", code, siteCodeLen)
		}
	}
	return nil
}

// Export lists the live flags of each site (one list per site) and builds the files and
// their check.
func (kprovider) Export(ctx context.Context, conn *provider.Connection, v provider.Values, opts export.Options) (*provider.Exported, error) {
	k, ok := conn.Vendor.(kameleoon)
	if !ok || k.client == nil {
		return nil, errors.New("export: not connected to Kameleoon")
	}
	sites := v.List("site-code")
	live, err := kexport.Read(ctx, k.client, sites)
	if err != nil {
		return nil, err
	}
	var empty []string
	total := 0
	for _, s := range live {
		total += len(s.Flags)
		if len(s.Flags) == 0 {
			empty = append(empty, s.Code)
		}
	}
	if total == 0 {
		return nil, fmt.Errorf("nothing to export: %s %s has no flags in %s (is the site code right?)",
			plural(len(sites), "site"), strings.Join(sites, ", "), conn.Where)
	}
	e, err := kexport.Build(live, opts)
	if err != nil {
		return nil, err
	}
	check, err := kexport.Verify(e, live)
	if err != nil {
		return nil, err
	}
	return &provider.Exported{Export: e, Check: check, What: plural(len(e.Scopes), "site"), Noun: "site", Empty: empty}, nil
}

// plural renders "1 site", "2 sites".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
