package kameleoon

import (
	"fmt"
	"log/slog"
	"strings"

	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"github.com/flagsync/flagsync/internal/provider"
)

// Sandbox is Kameleoon's sandbox for flagsync sandbox --vendor kameleoon: a local,
// Kameleoon-compatible Automation API.
func (kprovider) Sandbox() provider.Sandbox {
	return provider.Sandbox{
		Usage: provider.Usage{Text: `--vendor kameleoon serves a local, Kameleoon-compatible Automation API for feature flags:
OAuth client credentials, list/search/get/create/patch/delete of flags, rule patches,
Kameleoon's rate limits. Without credentials it accepts client id "sandbox" with client
secret "sandbox".

--strict switches on stricter readings of what Kameleoon's docs leave open, to test a
client against each (comma-separated, or "all"):
` + strictHelp(),
			Examples: []string{
				"flagsync sandbox --listen 127.0.0.1:8089 --state .flagsync/sandbox.json --sites pzllysfw2f",
				"FLAGSYNC_SANDBOX_CLIENT_SECRET=s3cret flagsync sandbox --client-id ci",
				"flagsync sandbox --strict env-patch-required,order-index",
				"flagsync sandbox --strict all",
			}},
		DefaultEnvironments: ksandbox.DefaultEnvironments,
		Flags: []provider.Flag{
			{Name: "sites", Default: "", EnvDefault: "FLAGSYNC_SANDBOX_SITES", Usage: "comma-separated site codes of the account (default: any 10-character code)"},
			{Name: "client-id", Default: "", EnvDefault: "FLAGSYNC_SANDBOX_CLIENT_ID", Usage: "accepted OAuth client id (default \"sandbox\")"},
			{Name: "client-secret", Default: "", Usage: "accepted OAuth client secret; prefer the variable, or FLAGSYNC_SANDBOX_CLIENT_SECRET_FILE (a flag shows in ps) (default \"sandbox\")"},
			{Name: "rate-10s", Default: 0, Usage: "calls allowed per 10 seconds (0: Kameleoon's 50; negative: unlimited)"},
			{Name: "rate-hour", Default: 0, Usage: "calls allowed per hour (0: Kameleoon's 1000; negative: unlimited)"},
			{Name: "strict", Default: "", EnvDefault: envSandboxStrict, Usage: "comma-separated strict variants to follow, or \"all\" (default: none, the lenient reading of each)"},
		},
		New: newSandbox,
	}
}

// newSandbox checks the sandbox command's flags and builds the server.
func newSandbox(in provider.SandboxInput) (*provider.Server, error) {
	v := in.Values
	secret := v.String("client-secret")
	if secret == "" {
		var err error
		if secret, err = provider.Secret(in.Getenv, "FLAGSYNC_SANDBOX_CLIENT_SECRET"); err != nil {
			return nil, err
		}
	}
	if (v.String("client-id") == "") != (secret == "") {
		return nil, provider.Usagef("give both a client id and a client secret, or neither (then \"sandbox\"/\"sandbox\" is accepted)")
	}
	variants, err := ksandbox.ParseVariants(v.String("strict"))
	if err != nil {
		return nil, provider.Usagef("--strict: %v", err)
	}
	opts := ksandbox.Options{
		Strict:       variants,
		Sites:        provider.SplitList(v.String("sites")),
		ClientID:     v.String("client-id"),
		ClientSecret: secret,
		Environments: in.Environments,
		RatePer10s:   v.Int("rate-10s"),
		RatePerHour:  v.Int("rate-hour"),
		StatePath:    in.StatePath,
		Logger:       in.Logger,
	}
	if err := provider.StateDir(opts.StatePath); err != nil {
		return nil, err
	}
	sb, err := ksandbox.New(opts)
	if err != nil {
		return nil, err
	}
	return &provider.Server{Handler: sb, Listening: func(addr string) { logListening(in.Logger, sb, opts, addr) }}, nil
}

// logListening logs that the sandbox listens, and which credentials it accepts.
func logListening(logger *slog.Logger, sb *ksandbox.Server, opts ksandbox.Options, addr string) {
	state := opts.StatePath
	if state == "" {
		state = "(memory only)"
	}
	sites := "any"
	if len(opts.Sites) > 0 {
		sites = strings.Join(opts.Sites, ",")
	}
	logger.Info("sandbox listening", "addr", addr, "url", "http://"+addr, "state", state,
		"environments", strings.Join(sb.Environments(), ","), "sites", sites, "strict", strictList(sb.Strict()))
	if opts.ClientID == "" {
		logger.Info("sandbox accepts the default credentials", "client_id", ksandbox.DefaultClientID, "client_secret", ksandbox.DefaultClientSecret)
	} else {
		logger.Info("sandbox accepts the configured credentials", "client_id", opts.ClientID)
	}
}

// strictHelp lists the strict variants with what each changes, for the help text.
func strictHelp() string {
	const width, indent = 90, 27
	var b strings.Builder
	for _, v := range ksandbox.Variants {
		line := fmt.Sprintf("  %-24s", v)
		for _, word := range strings.Fields(v.Description()) {
			if len(line)+1+len(word) > width {
				b.WriteString(line + "\n")
				line = strings.Repeat(" ", indent-1)
			}
			line += " " + word
		}
		b.WriteString(line + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
