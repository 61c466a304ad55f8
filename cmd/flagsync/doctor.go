package main

import (
	"context"
	"fmt"
	kdoctor "github.com/flagsync/flagsync/internal/kameleoon/doctor"
	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
	"slices"
)

const doctorSynopsis = `Usage: flagsync doctor --site SITECODE [--format text|json] [flags]

A live contract probe of a Kameleoon account: run it once before trusting flagsync with
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
sync; with --sandbox it probes the embedded sandbox (--strict all: in every strict variant).

Exit codes: 0 every behaviour flagsync relies on holds, 1 one does not (the row says what
to set or report) or the probe could not run, 64 usage.

Examples:
  flagsync doctor --site pzllysfw2f
  flagsync doctor --site pzllysfw2f --format json > doctor.json
  flagsync doctor --sandbox --strict all --site pzllysfw2f`

func cmdDoctor(ctx context.Context, a *app, args []string) int {
	fs := a.newFlagSet("doctor", doctorSynopsis)
	site := fs.String("site", "", "site code to probe (Admin > Projects in Kameleoon); the scratch flag is created there")
	format := fs.String("format", "text", "output: text or json")
	envs := fs.String("environments", "", "the two environment keys of the scratch flag, comma-separated (default development,staging)")
	segmentID := fs.Int64("segment-id", 0, "a segment of the site for the scratch flag's rules (for accounts that require one)")
	goalID := fs.Int64("goal-id", 0, "a goal of the site for the scratch flag's rollback conditions (for accounts that require one)")
	conn := a.addKameleoonAPIFlags(fs, "probe a Kameleoon-compatible sandbox started in this process instead of Kameleoon (no credentials needed)")
	logf := a.addLogFlags(fs)
	a.quietOnTerminal(fs)
	if code := a.parse(fs, args); code >= 0 {
		return code
	}
	if len(*site) != siteCodeLen {
		fmt.Fprintf(a.stderr, "flagsync doctor: --site %q: want a site code of %d characters\n", *site, siteCodeLen)
		return exitUsage
	}
	switch *format {
	case "text", "json":
	default:
		fmt.Fprintf(a.stderr, "flagsync doctor: --format %q: want text or json\n", *format)
		return exitUsage
	}
	envKeys := splitList(*envs)
	if len(envKeys) != 0 && (len(envKeys) != 2 || envKeys[0] == envKeys[1]) {
		fmt.Fprintf(a.stderr, "flagsync doctor: --environments %q: want two different environment keys\n", *envs)
		return exitUsage
	}
	if *segmentID < 0 || *goalID < 0 {
		fmt.Fprintln(a.stderr, "flagsync doctor: --segment-id and --goal-id must be positive")
		return exitUsage
	}
	if code := conn.check(a); code >= 0 {
		return code
	}
	logger, err := a.logger(logf)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync doctor: %v\n", err)
		return exitUsage
	}

	sandboxEnvs := envKeys
	if len(sandboxEnvs) == 0 {
		sandboxEnvs = kdoctor.DefaultEnvironments
	}
	cfg, where, stop, err := conn.kameleoonConfig(a, sandboxEnvironmentsWith(sandboxEnvs), logger)
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync doctor: %v\n", err)
		return exitFail
	}
	defer stop()
	d, err := kdoctor.New(kdoctor.Options{
		API: cfg, SiteCode: *site, Environments: envKeys, SegmentID: *segmentID, GoalID: *goalID, Logger: logger,
	})
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync doctor: %v\n", err)
		return exitFail
	}
	// The preface goes where the report goes, unless that is JSON, which stays one object.
	preface := a.stdout
	if *format == "json" {
		preface = a.stderr
	}
	fmt.Fprintln(preface, d.Preface(where))
	if *format == "text" {
		fmt.Fprintln(a.stdout)
	}

	rep := d.Run(ctx)
	if *format == "json" {
		err = rep.WriteJSON(a.stdout)
	} else {
		err = rep.WriteText(a.stdout)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "flagsync doctor: write the report: %v\n", err)
		return exitFail
	}
	if !rep.OK {
		return exitFail
	}
	return exitOK
}

// sandboxEnvironmentsWith are the embedded sandbox's default environments plus keys.
func sandboxEnvironmentsWith(keys []string) []string {
	envs := slices.Clone(ksandbox.DefaultEnvironments)
	for _, k := range keys {
		if !slices.Contains(envs, k) {
			envs = append(envs, k)
		}
	}
	return envs
}
