package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The deployment files are part of the product: these tests parse every one of them and
// check them against the commands this binary really has.

const deployDir = "../../deploy"

// helpText returns what `flagsync <cmd> -h` prints: run, as main calls it, with the
// process environment and the built-in registry.
func helpText(t *testing.T, cmd string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{cmd, "-h"}, &out, &errOut); code != exitOK {
		t.Fatalf("flagsync %s -h: exit %d", cmd, code)
	}
	return out.String() + errOut.String()
}

var helpFlagRE = regexp.MustCompile(`(?m)^\s+--?([a-z0-9][a-z0-9-]*)`)

// commandFlags returns the flags `flagsync <cmd>` accepts.
func commandFlags(t *testing.T, cmd string) map[string]bool {
	t.Helper()
	flags := map[string]bool{"h": true, "help": true}
	for _, m := range helpFlagRE.FindAllStringSubmatch(helpText(t, cmd), -1) {
		flags[m[1]] = true
	}
	return flags
}

var envNameRE = regexp.MustCompile(`\b(?:FLAGSYNC|KAMELEOON)_[A-Z0-9_]+\b`)

// knownEnv is every environment variable the commands' help texts name.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	env := map[string]bool{}
	for name := range commands {
		for _, v := range envNameRE.FindAllString(helpText(t, name), -1) {
			env[v] = true
		}
	}
	return env
}

// ciOnlyEnv are the CI examples' own variables, not flagsync's: the version to install
// and the names of the read-only credentials the plan job maps onto KAMELEOON_CLIENT_*.
var ciOnlyEnv = map[string]bool{
	"FLAGSYNC_VERSION":                 true,
	"KAMELEOON_READONLY_CLIENT_ID":     true,
	"KAMELEOON_READONLY_CLIENT_SECRET": true,
}

// checkEnv fails for a variable no command reads; NAME_FILE counts when NAME is known.
func checkEnv(t *testing.T, where string, names []string, known map[string]bool) {
	t.Helper()
	for _, n := range names {
		if !strings.HasPrefix(n, "FLAGSYNC_") && !strings.HasPrefix(n, "KAMELEOON_") || ciOnlyEnv[n] {
			continue
		}
		if known[n] || (strings.HasSuffix(n, "_FILE") && known[strings.TrimSuffix(n, "_FILE")]) {
			continue
		}
		t.Errorf("%s: environment variable %s is not read by flagsync (not in any command's help)", where, n)
	}
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// dig walks nested maps and lists: dig(m, "spec", "template", "spec", "containers", 0).
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestKubernetesManifests(t *testing.T) {
	dir := filepath.Join(deployDir, "kubernetes")
	kust := yamlDocs(t, filepath.Join(dir, "kustomization.yaml"))
	if len(kust) != 1 {
		t.Fatalf("kustomization.yaml: %d documents", len(kust))
	}
	byKind := map[string]map[string]any{}
	services := map[string]map[string]any{}
	for _, r := range dig(kust[0], "resources").([]any) {
		for _, d := range yamlDocs(t, filepath.Join(dir, r.(string))) {
			byKind[d["kind"].(string)] = d
			if d["kind"] == "Service" {
				services[fmt.Sprint(dig(d, "metadata", "name"))] = d
			}
		}
	}
	// No Secret: the base ships none (examples/secret.example.yaml only shows its keys).
	for _, kind := range []string{"Deployment", "Service", "ConfigMap", "ServiceAccount"} {
		if byKind[kind] == nil {
			t.Fatalf("no %s among the kustomization's resources", kind)
		}
	}

	dep := byKind["Deployment"]
	pod := dig(dep, "spec", "template", "spec")
	if dig(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	known := knownEnv(t)
	containers := dig(pod, "containers").([]any)
	for i := range containers {
		c := dig(containers, i)
		name := dig(c, "name")
		sc := dig(c, "securityContext")
		if dig(sc, "readOnlyRootFilesystem") != true {
			t.Errorf("container %v: readOnlyRootFilesystem is not true", name)
		}
		if dig(sc, "allowPrivilegeEscalation") != false {
			t.Errorf("container %v: allowPrivilegeEscalation is not false", name)
		}
		if drop, _ := dig(sc, "capabilities", "drop").([]any); len(drop) != 1 || drop[0] != "ALL" {
			t.Errorf("container %v: capabilities.drop = %v, want [ALL]", name, drop)
		}
		if dig(c, "livenessProbe", "httpGet", "path") != "/healthz" || dig(c, "readinessProbe", "httpGet", "path") != "/readyz" {
			t.Errorf("container %v: want liveness on /healthz and readiness on /readyz", name)
		}
		for _, kind := range []string{"requests", "limits"} {
			for _, res := range []string{"cpu", "memory"} {
				if dig(c, "resources", kind, res) == nil {
					t.Errorf("container %v: resources.%s.%s missing", name, kind, res)
				}
			}
		}
		// The container runs a real command with real flags.
		args, _ := dig(c, "args").([]any)
		if len(args) == 0 {
			t.Fatalf("container %v: no args", name)
		}
		cmd := args[0].(string)
		if _, ok := commands[cmd]; !ok {
			t.Fatalf("container %v runs unknown command %q", name, cmd)
		}
		flags := commandFlags(t, cmd)
		for _, a := range args[1:] {
			if f := strings.TrimLeft(strings.SplitN(a.(string), "=", 2)[0], "-"); strings.HasPrefix(a.(string), "-") && !flags[f] {
				t.Errorf("container %v: flagsync %s has no flag --%s", name, cmd, f)
			}
		}
		var env []string
		for _, e := range dig(c, "env").([]any) {
			env = append(env, dig(e, "name").(string))
		}
		checkEnv(t, "deployment.yaml", env, known)
		for _, mount := range dig(c, "volumeMounts").([]any) {
			if dig(mount, "mountPath") == "/var/cache/flagsync" {
				goto cacheMounted
			}
		}
		t.Errorf("container %v: the Git cache /var/cache/flagsync is not on a volume (root filesystem is read-only)", name)
	cacheMounted:
	}
	if ann := dig(dep, "spec", "template", "metadata", "annotations"); dig(ann, "prometheus.io/scrape") != "true" || dig(ann, "prometheus.io/path") != "/metrics" {
		t.Errorf("pod annotations %v: want prometheus.io/scrape and /metrics", ann)
	}

	var cm []string
	for k := range dig(byKind["ConfigMap"], "data").(map[string]any) {
		cm = append(cm, k)
	}
	sort.Strings(cm)
	checkEnv(t, "configmap.yaml", cm, known)
	if dig(services["flagsync"], "spec", "ports", 0, "targetPort") != "http" {
		t.Error("the flagsync Service does not target the container's http port")
	}
	if dig(services["flagsync-admin"], "spec", "ports", 0, "targetPort") != "admin" || len(dig(services["flagsync"], "spec", "ports").([]any)) != 1 {
		t.Error("the admin endpoints need their own Service on the container's admin port, apart from the webhook's")
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			lines = append(lines, l)
		}
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{"CGO_ENABLED=0", "USER 65532", "HEALTHCHECK", `ENTRYPOINT ["/usr/local/bin/flagsync"]`, `CMD ["run"]`} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	checkEnv(t, "Dockerfile", envNameRE.FindAllString(text, -1), knownEnv(t))
	checkInvocations(t, "Dockerfile", text)
}

// invocationRE finds `flagsync <command> ...` up to the end of a logical line or of the
// command (a pipe, ';', '&', ')'), and the
// exec form ["/usr/local/bin/flagsync", "healthcheck", "--url", ...].
var (
	invocationRE = regexp.MustCompile(`(?:^|[\s;&|(])flagsync\s+([a-z]+)((?:[^\n\\|;&)]|\\\n)*)`)
	execFormRE   = regexp.MustCompile(`"/usr/local/bin/flagsync",\s*"([a-z]+)"((?:,\s*"[^"]*")*)`)
	flagRE       = regexp.MustCompile(`(?:^|\s|")--?([a-z][a-z0-9-]*)`)
)

// invocationProblems lists flagsync commands and flags in text that do not exist, and
// counts the invocations it found.
func invocationProblems(t *testing.T, text string) (problems []string, n int) {
	t.Helper()
	check := func(cmd, rest string) {
		n++
		if _, ok := commands[cmd]; !ok {
			problems = append(problems, "unknown command `flagsync "+cmd+"`")
			return
		}
		flags := commandFlags(t, cmd)
		for _, m := range flagRE.FindAllStringSubmatch(rest, -1) {
			if !flags[m[1]] {
				problems = append(problems, "`flagsync "+cmd+"` has no flag --"+m[1])
			}
		}
	}
	for _, m := range invocationRE.FindAllStringSubmatch(text, -1) {
		check(m[1], m[2])
	}
	for _, m := range execFormRE.FindAllStringSubmatch(text, -1) {
		check(m[1], m[2])
	}
	return problems, n
}

// checkInvocations fails for a flagsync command or flag in text that does not exist.
func checkInvocations(t *testing.T, where, text string) int {
	t.Helper()
	problems, n := invocationProblems(t, text)
	for _, p := range problems {
		t.Errorf("%s: %s", where, p)
	}
	return n
}

// scripts collects every shell script of a CI file: GitHub's `run:` and GitLab's
// `script:`/`before_script:` entries.
func scripts(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			switch k {
			case "run":
				if s, ok := val.(string); ok {
					*out = append(*out, s)
				}
			case "script", "before_script", "after_script":
				if l, ok := val.([]any); ok {
					for _, s := range l {
						if str, ok := s.(string); ok {
							*out = append(*out, str)
						}
					}
				}
			}
			scripts(val, out)
		}
	case []any:
		for _, e := range x {
			scripts(e, out)
		}
	}
}

func TestCIExamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(deployDir, "github-actions", "*.yml"))
	gl, _ := filepath.Glob(filepath.Join(deployDir, "gitlab-ci", "*.yml"))
	files = append(files, gl...)
	if len(files) < 3 {
		t.Fatalf("found %d CI files, want the GitHub plan and sync workflows and the GitLab example", len(files))
	}
	known := knownEnv(t)
	for _, f := range files {
		docs := yamlDocs(t, f)
		if len(docs) != 1 {
			t.Fatalf("%s: %d YAML documents", f, len(docs))
		}
		if strings.Contains(f, "github-actions") && (docs[0]["jobs"] == nil || docs[0]["on"] == nil) {
			t.Errorf("%s: not a GitHub workflow (no on/jobs)", f)
		}
		var ss []string
		scripts(docs[0], &ss)
		calls := 0
		for _, s := range ss {
			calls += checkInvocations(t, f, s)
		}
		if calls == 0 {
			t.Errorf("%s: runs no flagsync command", f)
		}
		raw, _ := os.ReadFile(f)
		checkEnv(t, f, envNameRE.FindAllString(string(raw), -1), known)
	}
}

// TestInvocationCheckCatchesMistakes proves the checks above can fail.
func TestInvocationCheckCatchesMistakes(t *testing.T) {
	for _, bad := range []string{
		"flagsync plann --format json",
		"flagsync plan --formatt json",
		"x && flagsync sync \\\n  --dry-runn",
		`CMD ["/usr/local/bin/flagsync", "healthcheck", "--uri", "http://x"]`,
	} {
		if problems, n := invocationProblems(t, bad); n != 1 || len(problems) == 0 {
			t.Errorf("%q: %d invocations, problems %q: want one, refused", bad, n, problems)
		}
	}
	good := "flagsync plan --repo . --format markdown \\\n  --out plan.md --json-out plan.json"
	if problems, n := invocationProblems(t, good); n != 1 || len(problems) > 0 {
		t.Errorf("valid invocation: %d found, problems %q", n, problems)
	}
	if bad := []string{"FLAGSYNC_NO_SUCH_SETTING"}; true {
		known := knownEnv(t)
		if known[bad[0]] || !known["FLAGSYNC_SCHEDULE"] || !known["KAMELEOON_CLIENT_SECRET"] {
			t.Errorf("known env: %d names, FLAGSYNC_SCHEDULE %v, KAMELEOON_CLIENT_SECRET %v", len(known), known["FLAGSYNC_SCHEDULE"], known["KAMELEOON_CLIENT_SECRET"])
		}
	}
}
