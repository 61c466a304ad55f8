package unleash

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/flagsync/flagsync/internal/export"
	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/reconcile"
	unleashclient "github.com/flagsync/flagsync/internal/unleash/client"
	unleashexport "github.com/flagsync/flagsync/internal/unleash/export"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
)

// flagURL is the connection flag that names the Unleash server; it wins over
// UNLEASH_URL.
const flagURL = "unleash-url"

// flagProject is export's flag: the projects to export.
const flagProject = "project"

// Provider returns Unleash's provider: its files say vendor: unleash (in flagsync.yaml or
// in the file), its client is the admin API's of a real Unleash server (Unleash has no
// embedded sandbox), and it offers export.
func Provider() provider.Provider { return uprovider{} }

type uprovider struct{}

// The provider exports.
var _ provider.Exporter = uprovider{}

// Name is "unleash", the vendor: of Unleash's files.
func (uprovider) Name() string { return unleashmodel.Vendor }

// Files is the Unleash vendor without a client.
func (uprovider) Files() reconcile.Vendor { return Vendor(nil) }

// Help describes Unleash for the commands.
func (uprovider) Help() provider.Help {
	return provider.Help{
		Service: unleashmodel.Service,
		Scope:   "project",
		Files:   "Unleash flag files (vendor: unleash in flagsync.yaml or in the file)",
		Credentials: "Unleash's server comes from " + unleashclient.EnvURL + " (or --" + flagURL + ") and its admin token from " +
			unleashclient.EnvAdminToken + " (or _FILE); Unleash has no sandbox",
		// Read in the list of --sandbox's services: "…, none for Unleash flag files".
		Sandbox:    "none",
		Automation: "Unleash's UI or API",
	}
}

// Flags has the one flag that selects the Unleash server. The token is never a flag.
func (uprovider) Flags() []provider.Flag {
	return []provider.Flag{
		{Name: flagURL, Default: "", EnvDefault: unleashclient.EnvURL, EnvByProvider: true,
			Usage: "Unleash server URL, for Unleash flag files, e.g. https://unleash.example.com; the admin token comes from " +
				unleashclient.EnvAdminToken + " (or _FILE)"},
	}
}

// Check reports a bad --unleash-url, and --unleash-url with --sandbox. --sandbox alone is
// not refused here: it is every service's flag, and a repository without Unleash files
// may use it; Connect refuses it when Unleash files are to be synced.
func (uprovider) Check(in provider.ConnectInput) error {
	u := in.Values.String(flagURL)
	if u == "" {
		return nil
	}
	if in.Sandbox {
		return provider.Usagef("--sandbox excludes --%s (Unleash has no sandbox: its flag files always sync into the server --%s names)", flagURL, flagURL)
	}
	if err := checkURL(u); err != nil {
		return provider.Usagef("--%s: %v", flagURL, err)
	}
	return nil
}

// checkURL checks a server URL as the client will take it.
func checkURL(s string) error {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("%q is not an http(s) URL of an Unleash server (want e.g. https://unleash.example.com)", s)
	}
	return nil
}

// Connect builds the admin API client of the server --unleash-url or UNLEASH_URL names,
// with the token of UNLEASH_ADMIN_TOKEN (or _FILE). With --sandbox it refuses, saying
// what to do instead: Unleash has no embedded sandbox, and flagsync never syncs into a
// real server when a sandbox was asked for.
func (uprovider) Connect(_ context.Context, in provider.ConnectInput) (*provider.Connection, error) {
	if in.Sandbox {
		return nil, noSandbox(in.Repo)
	}
	getenv := in.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if u := in.Values.String(flagURL); u != "" {
		env := getenv
		getenv = func(k string) string {
			if k == unleashclient.EnvURL {
				return u
			}
			return env(k)
		}
	}
	cfg, err := unleashclient.ConfigFromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("%w\n  Unleash flag files sync into a real Unleash server: set %s (or --%s) to its URL and %s (or %s_FILE) to an admin API token or a personal access token (see docs/unleash.md)",
			err, unleashclient.EnvURL, flagURL, unleashclient.EnvAdminToken, unleashclient.EnvAdminToken)
	}
	cfg.Logger = in.Logger
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Observer = in.Observe
	c, err := unleashclient.New(cfg)
	if err != nil {
		return nil, err
	}
	return &provider.Connection{Vendor: Vendor(c), Where: "Unleash (" + c.BaseURL() + ")", Budget: c.Budget()}, nil
}

// noSandbox is the usage error of --sandbox for Unleash flag files: what there is, and
// what to do instead.
func noSandbox(repo reconcile.Repo) error {
	what := "Unleash flag files"
	if repo != nil {
		n := len(repo.Files())
		what = fmt.Sprintf("%d Unleash flag file", n)
		if n != 1 {
			what += "s"
		}
	}
	return provider.Usagef("--sandbox: the repository has %s, and Unleash has no embedded sandbox. "+
		"Sync them into a real Unleash server instead: run one (the open-source unleash-server runs locally on PostgreSQL; "+
		"see docs/unleash.md), set %s and %s (or %s_FILE), and run the command without --sandbox",
		what, unleashclient.EnvURL, unleashclient.EnvAdminToken, unleashclient.EnvAdminToken)
}

// Sandbox says there is none (provider.Sandbox.None): flagsync sandbox --vendor unleash
// is a usage error that says what to run instead.
func (uprovider) Sandbox() provider.Sandbox {
	return provider.Sandbox{
		Usage: provider.Usage{Text: `--vendor unleash has no sandbox: Unleash's own server is open source, so flagsync
syncs Unleash flag files into a real one. Run unleash-server (npm) on PostgreSQL, as the
tests do (docs/unleash.md), and point flagsync at it with UNLEASH_URL and
UNLEASH_ADMIN_TOKEN.`},
		None: fmt.Sprintf("--vendor unleash: Unleash has no embedded sandbox. Run the open-source unleash-server "+
			"(docs/unleash.md shows how) and point flagsync at it with %s and %s (or %s_FILE)",
			unleashclient.EnvURL, unleashclient.EnvAdminToken, unleashclient.EnvAdminToken),
	}
}

// ExportUsage says what an Unleash export reads and writes.
func (uprovider) ExportUsage() provider.Usage {
	return provider.Usage{Text: `--vendor unleash reads each --project (default: default): its flag list, one GET per flag
with strategies, and the segment list when a strategy uses segments; archived flags are
not exported. It writes:

  one project:  DIR/flagsync.yaml (vendor: unleash, project, environments), DIR/<name>.yaml
  several:      DIR/flagsync.yaml (vendor: unleash, environments), DIR/<project>/<name>.yaml`,
		Examples: []string{
			"flagsync export --vendor unleash --project default --out flags",
		}}
}

// ExportFlags are export's flags for Unleash: the projects to export.
func (uprovider) ExportFlags() []provider.Flag {
	return []provider.Flag{
		{Name: flagProject, Default: []string(nil), Usage: "with --vendor unleash: the Unleash project to export; repeat it or separate projects with commas (default: default)"},
	}
}

// CheckExport checks the project ids: they name folders when there are several.
func (uprovider) CheckExport(v provider.Values) error {
	for _, p := range v.List(flagProject) {
		if !export.SafeName.MatchString(p) {
			return provider.Usagef("--%s: %q is not an Unleash project id", flagProject, p)
		}
	}
	return nil
}

// Export reads the projects (--project, else the default project) and builds the files
// and their check.
func (uprovider) Export(ctx context.Context, conn *provider.Connection, v provider.Values, opts export.Options) (*provider.Exported, error) {
	uv, ok := conn.Vendor.(vendor)
	c, isClient := uv.client.(*unleashclient.Client)
	if !ok || !isClient {
		return nil, errors.New("export: not connected to Unleash")
	}
	projects := v.List(flagProject)
	if len(projects) == 0 {
		projects = []string{unleashmodel.DefaultProject}
	}
	live, err := unleashexport.Read(ctx, c, projects)
	if err != nil {
		return nil, err
	}
	var empty []string
	total := 0
	for _, p := range live.Projects {
		total += len(p.Flags)
		if len(p.Flags) == 0 {
			empty = append(empty, p.Name)
		}
	}
	what := "project " + projects[0]
	if len(projects) > 1 {
		what = fmt.Sprintf("%d projects", len(projects))
	}
	if total == 0 {
		has := "project " + projects[0] + " has"
		if len(projects) > 1 {
			has = "projects " + strings.Join(projects, ", ") + " have"
		}
		return nil, fmt.Errorf("nothing to export: %s no active flags in %s (is the project id right?)", has, conn.Where)
	}
	e, err := unleashexport.Build(live, opts)
	if err != nil {
		return nil, err
	}
	check, err := unleashexport.Verify(e, live)
	if err != nil {
		return nil, err
	}
	return &provider.Exported{Export: e, Check: check, What: what, Noun: "project", Empty: empty}, nil
}
