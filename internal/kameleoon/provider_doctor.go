package kameleoon

import (
	"context"
	"io"

	kdoctor "github.com/flagsync/flagsync/internal/kameleoon/doctor"
	"github.com/flagsync/flagsync/internal/provider"
)

// DoctorUsage describes flagsync doctor for Kameleoon.
func (kprovider) DoctorUsage() provider.Usage {
	return provider.Usage{Text: `A live contract probe of a Kameleoon account: run it once before trusting flagsync with
production, and in CI against the sandbox. In the named site it creates one scratch flag
(flagsync_doctor_<random hex>, tagged managed-by-flagsync, with two environments and two
rules), exercises the behaviours flagsync relies on and detects the readings of what
Kameleoon's docs leave open: token and renewal, list paging and optionalFields, create
with environments, environment patches with and without the required members, rule ids
kept across a patch, reorders with and without orderIndex, the rule PATCH by id, search
sorted by dateModified, release window shape, rate-limit headers. It then archives the
scratch flag, also when a probe failed or the run is interrupted.

It makes at most 25 API calls (token requests included), says so before it starts and
prints the count at the end. The output is a table (behaviour, expected by flagsync,
observed, consequence) or, with --format json, one JSON object.

Credentials come from KAMELEOON_CLIENT_ID and KAMELEOON_CLIENT_SECRET (or _FILE), as for
sync; with --sandbox it probes the embedded sandbox (--strict all: in every strict variant).`,
		Examples: []string{
			"flagsync doctor --site pzllysfw2f",
			"flagsync doctor --site pzllysfw2f --format json > doctor.json",
			"flagsync doctor --sandbox --strict all --site pzllysfw2f",
		}}
}

// DoctorFlags are doctor's flags for Kameleoon.
func (kprovider) DoctorFlags() []provider.Flag {
	return []provider.Flag{
		{Name: "site", Default: "", Usage: "site code to probe (Admin > Projects in Kameleoon); the scratch flag is created there"},
		{Name: "environments", Default: "", Usage: "the two environment keys of the scratch flag, comma-separated (default development,staging)"},
		{Name: "segment-id", Default: 0, Usage: "a segment of the site for the scratch flag's rules (for accounts that require one)"},
		{Name: "goal-id", Default: 0, Usage: "a goal of the site for the scratch flag's rollback conditions (for accounts that require one)"},
	}
}

// NewProbe checks doctor's flags and prepares a probe of the account (or of the
// embedded sandbox, started here).
func (kprovider) NewProbe(in provider.ConnectInput) (provider.Probe, error) {
	v := in.Values
	site := v.String("site")
	if len(site) != siteCodeLen {
		return nil, provider.Usagef("--site %q: want a site code of %d characters", site, siteCodeLen)
	}
	envKeys := provider.SplitList(v.String("environments"))
	if len(envKeys) != 0 && (len(envKeys) != 2 || envKeys[0] == envKeys[1]) {
		return nil, provider.Usagef("--environments %q: want two different environment keys", v.String("environments"))
	}
	if v.Int("segment-id") < 0 || v.Int("goal-id") < 0 {
		return nil, provider.Usagef("--segment-id and --goal-id must be positive")
	}
	sandboxEnvs := envKeys
	if len(sandboxEnvs) == 0 {
		sandboxEnvs = kdoctor.DefaultEnvironments
	}
	cfg, where, stop, err := clientConfig(in, sandboxEnvironments(nil, sandboxEnvs))
	if err != nil {
		return nil, err
	}
	d, err := kdoctor.New(kdoctor.Options{
		API: cfg, SiteCode: site, Environments: envKeys, SegmentID: int64(v.Int("segment-id")), GoalID: int64(v.Int("goal-id")), Logger: in.Logger,
	})
	if err != nil {
		stop()
		return nil, err
	}
	return probe{d: d, where: where, stop: stop}, nil
}

// probe is a prepared doctor run.
type probe struct {
	d     *kdoctor.Doctor
	where string
	stop  func()
}

// Preface says what the probe does, where, and its most calls.
func (p probe) Preface() string { return p.d.Preface(p.where) }

// Run probes the account.
func (p probe) Run(ctx context.Context) provider.ProbeReport { return report{p.d.Run(ctx)} }

// Close stops the embedded sandbox, if any.
func (p probe) Close() { p.stop() }

// report is a doctor report as the command sees it.
type report struct{ *kdoctor.Report }

// OK reports whether every relied-upon behaviour holds.
func (r report) OK() bool { return r.Report.OK }

// WriteText writes the table.
func (r report) WriteText(w io.Writer) error { return r.Report.WriteText(w) }

// WriteJSON writes the JSON object.
func (r report) WriteJSON(w io.Writer) error { return r.Report.WriteJSON(w) }
