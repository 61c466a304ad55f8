package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

// The Helm chart, the image build and the release workflow are part of the product too:
// these tests render the chart with every values file of its ci/ folder and check what
// comes out against this binary, against the kustomize base, and against what the chart
// promises (one writer, no placeholder secret, nothing pulled by a mutable name).

var chartDir = filepath.Join(deployDir, "helm", "flagsync")

// helmBinary finds helm, or skips the test; with FLAGSYNC_REQUIRE_HELM=1 (as .ci/run sets)
// a missing helm fails it, so CI cannot pass without rendering the chart.
func helmBinary(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("helm")
	if err == nil {
		return path
	}
	msg := "HELM NOT FOUND ON PATH: the Helm chart (deploy/helm/flagsync) is NOT rendered or linted by this run. " +
		"Install it with: (cd /tmp && go install helm.sh/helm/v4/cmd/helm@v4.3.2) and put $(go env GOPATH)/bin on PATH"
	if os.Getenv("FLAGSYNC_REQUIRE_HELM") == "1" {
		t.Fatal(msg + " (FLAGSYNC_REQUIRE_HELM=1)")
	}
	t.Skip(msg)
	return ""
}

// runHelm runs helm with its caches, settings and kubeconfig in a temporary folder, so a
// test neither reads nor writes the user's, and never reaches a cluster.
func runHelm(t *testing.T, helm string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// helmTemplate renders the chart as release "flagsync" in namespace "flagsync", the names
// the kustomize base uses.
func helmTemplate(t *testing.T, helm string, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := runHelm(t, helm, append([]string{"template", "flagsync", chartDir, "--namespace", "flagsync"}, args...)...)
	if err != nil {
		return out, fmt.Errorf("helm template %s: %v: %s", strings.Join(args, " "), err, errOut)
	}
	return out, nil
}

// decodeDocs decodes every YAML document of r; where names it in failures.
func decodeDocs(t *testing.T, where string, r io.Reader) []map[string]any {
	t.Helper()
	var docs []map[string]any
	dec := yaml.NewDecoder(r)
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// rendered is a chart's output, by kind and name.
type rendered map[string]map[string]any

func (r rendered) get(t *testing.T, kind, name string) map[string]any {
	t.Helper()
	o := r[kind+"/"+name]
	if o == nil {
		t.Fatalf("no %s %q rendered (have %v)", kind, name, r.names())
	}
	return o
}

func (r rendered) names() []string {
	var n []string
	for k := range r {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func (r rendered) kinds() map[string]int {
	k := map[string]int{}
	for _, o := range r {
		k[o["kind"].(string)]++
	}
	return k
}

// parseRendered checks that every rendered object is a Kubernetes object with a unique
// kind and name, and indexes them.
func parseRendered(t *testing.T, where, out string) rendered {
	t.Helper()
	r := rendered{}
	for _, d := range decodeDocs(t, where, strings.NewReader(out)) {
		kind, _ := d["kind"].(string)
		api, _ := d["apiVersion"].(string)
		name, _ := dig(d, "metadata", "name").(string)
		if kind == "" || api == "" || name == "" {
			t.Fatalf("%s: an object without apiVersion, kind or metadata.name: %v", where, d)
		}
		if r[kind+"/"+name] != nil {
			t.Fatalf("%s: %s %s rendered twice", where, kind, name)
		}
		if ns := dig(d, "metadata", "namespace"); ns != nil && ns != "flagsync" {
			t.Errorf("%s: %s %s in namespace %v, not the release's", where, kind, name, ns)
		}
		r[kind+"/"+name] = d
	}
	return r
}

// checkDaemonPod holds a rendered Deployment to what the kustomize base's test holds it
// to, and to this binary's commands, flags and environment variables.
func checkDaemonPod(t *testing.T, where string, r rendered) {
	t.Helper()
	dep := r.get(t, "Deployment", "flagsync")
	pod := dig(dep, "spec", "template", "spec")
	if dig(pod, "securityContext", "runAsNonRoot") != true || dig(pod, "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("%s: pod securityContext %v: want runAsNonRoot and seccomp RuntimeDefault", where, dig(pod, "securityContext"))
	}
	known := knownEnv(t)
	runHelp := helpText(t, "run")
	containers, _ := dig(pod, "containers").([]any)
	if len(containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", where, len(containers))
	}
	c := containers[0]
	sc := dig(c, "securityContext")
	if dig(sc, "readOnlyRootFilesystem") != true || dig(sc, "allowPrivilegeEscalation") != false || dig(sc, "privileged") != false {
		t.Errorf("%s: container securityContext %v: want a read-only root filesystem, no privilege escalation, not privileged", where, sc)
	}
	if drop, _ := dig(sc, "capabilities", "drop").([]any); len(drop) != 1 || drop[0] != "ALL" {
		t.Errorf("%s: capabilities.drop = %v, want [ALL]", where, drop)
	}
	if dig(c, "livenessProbe", "httpGet", "path") != "/healthz" || dig(c, "readinessProbe", "httpGet", "path") != "/readyz" || dig(c, "startupProbe", "httpGet", "path") != "/healthz" {
		t.Errorf("%s: want liveness and startup probes on /healthz, readiness on /readyz", where)
	}
	for _, kind := range []string{"requests", "limits"} {
		for _, res := range []string{"cpu", "memory"} {
			if dig(c, "resources", kind, res) == nil {
				t.Errorf("%s: resources.%s.%s missing", where, kind, res)
			}
		}
	}
	image, _ := dig(c, "image").(string)
	if !regexp.MustCompile(`^[a-z0-9./-]+(:v[0-9][^:@]*|@sha256:[0-9a-f]{64})$`).MatchString(image) {
		t.Errorf("%s: image %q: want a release tag or a sha256 digest", where, image)
	}
	args, _ := dig(c, "args").([]any)
	if len(args) == 0 || args[0] != "run" {
		t.Fatalf("%s: args %v: want flagsync run", where, args)
	}
	flags := commandFlags(t, "run")
	for _, a := range args[1:] {
		s := a.(string)
		if f := strings.TrimLeft(strings.SplitN(s, "=", 2)[0], "-"); strings.HasPrefix(s, "-") && !flags[f] {
			t.Errorf("%s: flagsync run has no flag --%s", where, f)
		}
	}
	var env []string
	for _, e := range dig(c, "env").([]any) {
		env = append(env, dig(e, "name").(string))
	}
	cm := r.get(t, "ConfigMap", "flagsync")
	for k := range dig(cm, "data").(map[string]any) {
		env = append(env, k)
	}
	var checked []string
	for _, n := range env {
		switch {
		case strings.HasPrefix(n, "SPLIT_"):
			if !strings.Contains(runHelp, strings.TrimSuffix(n, "_FILE")) {
				t.Errorf("%s: %s is not read by flagsync run", where, n)
			}
		default:
			checked = append(checked, n)
		}
	}
	sort.Strings(checked)
	checkEnv(t, where, checked, known)
	mounted := map[string]bool{}
	for _, m := range dig(c, "volumeMounts").([]any) {
		mounted[dig(m, "mountPath").(string)] = true
	}
	for _, p := range []string{"/var/cache/flagsync", "/tmp", "/etc/flagsync/secrets"} {
		if !mounted[p] {
			t.Errorf("%s: %s is not on a volume (the root filesystem is read-only)", where, p)
		}
	}
	// Only leader election's Lease needs the API: the token is mounted for it alone.
	_, hasRole := r["Role/flagsync-leader-election"]
	if dig(pod, "automountServiceAccountToken") != hasRole {
		t.Errorf("%s: automountServiceAccountToken %v with leader-election Role %v: want the token only for leader election", where, dig(pod, "automountServiceAccountToken"), hasRole)
	}
	if sa := r.get(t, "ServiceAccount", "flagsync"); dig(sa, "automountServiceAccountToken") != false {
		t.Errorf("%s: the ServiceAccount mounts its token by default", where)
	}
	replicas, _ := dig(dep, "spec", "replicas").(int)
	if replicas > 1 && !hasRole {
		t.Errorf("%s: %d replicas without leader election", where, replicas)
	}
	strategy := dig(dep, "spec", "strategy", "type")
	if !hasRole && strategy != "Recreate" {
		t.Errorf("%s: strategy %v without leader election: two daemons would overlap during a rollout", where, strategy)
	}
}

// envOf returns a container's environment as name → value (valueFrom as its YAML).
func envOf(t *testing.T, r rendered) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range dig(r.get(t, "Deployment", "flagsync"), "spec", "template", "spec", "containers", 0, "env").([]any) {
		v, _ := dig(e, "value").(string)
		if from := dig(e, "valueFrom"); from != nil {
			v = fmt.Sprint(from)
		}
		env[dig(e, "name").(string)] = v
	}
	return env
}

func TestHelmChart(t *testing.T) {
	helm := helmBinary(t)
	secretFiles := map[string]string{
		"KAMELEOON_CLIENT_ID_FILE":     "/etc/flagsync/secrets/kameleoon-client-id",
		"KAMELEOON_CLIENT_SECRET_FILE": "/etc/flagsync/secrets/kameleoon-client-secret",
		"FLAGSYNC_GIT_TOKEN_FILE":      "/etc/flagsync/secrets/git-token",
		"FLAGSYNC_WEBHOOK_SECRET_FILE": "/etc/flagsync/secrets/webhook-secret",
		"FLAGSYNC_ADMIN_TOKEN_FILE":    "/etc/flagsync/secrets/admin-token",
	}
	cases := []struct {
		values string
		check  func(t *testing.T, out string, r rendered)
	}{
		{"default-values.yaml", func(t *testing.T, out string, r rendered) {
			want := map[string]int{"ServiceAccount": 1, "ConfigMap": 1, "Service": 2, "Deployment": 1}
			if got := r.kinds(); !reflect.DeepEqual(got, want) {
				t.Errorf("kinds %v, want %v: no Secret (existingSecret), the webhook and admin Services, nothing optional", got, want)
			}
			env := envOf(t, r)
			// One replica without election, even in a cluster; the admin endpoints on
			// their own port, behind their own Service.
			if env["FLAGSYNC_LEADER_ELECT"] != "none" || env["FLAGSYNC_ADMIN_LISTEN"] != "0.0.0.0:9090" || env["FLAGSYNC_ADVERTISE_URL"] != "" {
				t.Errorf("default env: FLAGSYNC_LEADER_ELECT=%q FLAGSYNC_ADMIN_LISTEN=%q FLAGSYNC_ADVERTISE_URL=%q", env["FLAGSYNC_LEADER_ELECT"], env["FLAGSYNC_ADMIN_LISTEN"], env["FLAGSYNC_ADVERTISE_URL"])
			}
			if admin := r.get(t, "Service", "flagsync-admin"); dig(admin, "spec", "ports", 0, "targetPort") != "admin" {
				t.Errorf("admin Service %v", dig(admin, "spec"))
			}
			for k, v := range secretFiles {
				if env[k] != v {
					t.Errorf("%s = %q, want %q", k, env[k], v)
				}
			}
			dep := r.get(t, "Deployment", "flagsync")
			if got := dig(dep, "spec", "template", "spec", "volumes", 2, "secret", "secretName"); got != "flagsync" {
				t.Errorf("secret volume mounts %v, want the existing Secret flagsync", got)
			}
			if dig(dep, "spec", "replicas") != 1 {
				t.Errorf("replicas %v, want 1", dig(dep, "spec", "replicas"))
			}
		}},
		{"leader-election-values.yaml", func(t *testing.T, out string, r rendered) {
			dep := r.get(t, "Deployment", "flagsync")
			if dig(dep, "spec", "replicas") != 2 || dig(dep, "spec", "strategy", "type") != "RollingUpdate" {
				t.Errorf("replicas %v, strategy %v: want 2 and RollingUpdate", dig(dep, "spec", "replicas"), dig(dep, "spec", "strategy", "type"))
			}
			env := envOf(t, r)
			if env["FLAGSYNC_LEADER_ELECT"] != "lease" || env["FLAGSYNC_LEADER_ELECTION_ID"] != "flagsync" ||
				!strings.Contains(env["FLAGSYNC_LEADER_ELECTION_NAMESPACE"], "metadata.namespace") || env["FLAGSYNC_ADMIN_LISTEN"] != "0.0.0.0:9090" ||
				!strings.Contains(env["POD_IP"], "status.podIP") || env["FLAGSYNC_ADVERTISE_URL"] != "http://$(POD_IP):8080" {
				t.Errorf("leader election and admin env: %v", env)
			}
			role := r.get(t, "Role", "flagsync-leader-election")
			grants := map[string]bool{}
			for _, rule := range dig(role, "rules").([]any) {
				for _, g := range dig(rule, "apiGroups").([]any) {
					for _, res := range dig(rule, "resources").([]any) {
						for _, v := range dig(rule, "verbs").([]any) {
							names, _ := dig(rule, "resourceNames").([]any)
							grants[fmt.Sprintf("%s/%s:%s%v", g, res, v, names)] = true
						}
					}
				}
			}
			for _, g := range []string{"coordination.k8s.io/leases:create[]", "coordination.k8s.io/leases:get[flagsync]", "coordination.k8s.io/leases:update[flagsync]", "/events:create[]"} {
				if !grants[g] {
					t.Errorf("Role lacks %s (has %v)", g, grants)
				}
			}
			for g := range grants {
				if strings.Contains(g, ":delete") || strings.Contains(g, ":list") || strings.Contains(g, "secrets") || strings.Contains(g, "*") {
					t.Errorf("Role grants more than leader election needs: %s", g)
				}
			}
			rb := r.get(t, "RoleBinding", "flagsync-leader-election")
			if dig(rb, "roleRef", "name") != "flagsync-leader-election" || dig(rb, "subjects", 0, "name") != "flagsync" || dig(rb, "subjects", 0, "namespace") != "flagsync" {
				t.Errorf("RoleBinding %v does not bind the Role to the pod's ServiceAccount", rb)
			}
			pdb := r.get(t, "PodDisruptionBudget", "flagsync")
			if dig(pdb, "spec", "minAvailable") != 1 || !reflect.DeepEqual(dig(pdb, "spec", "selector", "matchLabels"), dig(dep, "spec", "selector", "matchLabels")) {
				t.Errorf("PodDisruptionBudget %v: want minAvailable 1 over the Deployment's pods", dig(pdb, "spec"))
			}
			admin := r.get(t, "Service", "flagsync-admin")
			if dig(admin, "spec", "type") != "ClusterIP" || dig(admin, "spec", "ports", 0, "targetPort") != "admin" {
				t.Errorf("admin Service %v: want ClusterIP on the admin port", dig(admin, "spec"))
			}
			if len(dig(r.get(t, "Service", "flagsync"), "spec", "ports").([]any)) != 1 {
				t.Error("the webhook Service exposes more than the webhook port")
			}
		}},
		{"monitoring-values.yaml", func(t *testing.T, out string, r rendered) {
			sm := r.get(t, "ServiceMonitor", "flagsync")
			if dig(sm, "apiVersion") != "monitoring.coreos.com/v1" || dig(sm, "spec", "endpoints", 0, "port") != "admin" || dig(sm, "spec", "endpoints", 0, "path") != "/metrics" {
				t.Errorf("ServiceMonitor %v: want monitoring.coreos.com/v1 scraping /metrics on the admin port", sm)
			}
			if dig(sm, "metadata", "labels", "release") != "kube-prometheus-stack" {
				t.Error("serviceMonitor.labels not applied")
			}
			// The selector picks the admin Service, and only it.
			sel := dig(sm, "spec", "selector", "matchLabels").(map[string]any)
			var picked []string
			for key, o := range r {
				if o["kind"] != "Service" {
					continue
				}
				labels := dig(o, "metadata", "labels").(map[string]any)
				match := true
				for k, v := range sel {
					match = match && labels[k] == v
				}
				if match {
					picked = append(picked, key)
				}
			}
			if !reflect.DeepEqual(picked, []string{"Service/flagsync-admin"}) {
				t.Errorf("ServiceMonitor selects %v, want the admin Service", picked)
			}
			ann := dig(r.get(t, "Deployment", "flagsync"), "spec", "template", "metadata", "annotations")
			if dig(ann, "prometheus.io/port") != "9090" {
				t.Errorf("prometheus.io/port = %v, want the admin port 9090", dig(ann, "prometheus.io/port"))
			}
		}},
		{"networkpolicy-values.yaml", func(t *testing.T, out string, r rendered) {
			np := r.get(t, "NetworkPolicy", "flagsync")
			if !reflect.DeepEqual(dig(np, "spec", "policyTypes"), []any{"Ingress", "Egress"}) {
				t.Errorf("policyTypes %v: want both", dig(np, "spec", "policyTypes"))
			}
			ingress := dig(np, "spec", "ingress").([]any)
			if len(ingress) != 3 {
				t.Fatalf("%d ingress rules, want the webhook port (the ingress controller's, and the replicas' own), and the admin port", len(ingress))
			}
			for i, want := range []struct{ port, ns string }{{"http", "ingress-nginx"}, {"http", ""}, {"admin", "monitoring"}} {
				rule := ingress[i]
				from, _ := dig(rule, "from").([]any)
				if dig(rule, "ports", 0, "port") != want.port || len(from) != 1 {
					t.Errorf("ingress rule %d %v: want port %s from one peer", i, rule, want.port)
					continue
				}
				if want.ns == "" {
					// A follower hands webhooks to the leader: the release's pods.
					if !reflect.DeepEqual(dig(from[0], "podSelector", "matchLabels"), dig(np, "spec", "podSelector", "matchLabels")) {
						t.Errorf("ingress rule %d %v: want the release's own pods", i, rule)
					}
				} else if dig(from[0], "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") != want.ns {
					t.Errorf("ingress rule %d %v: want port %s from namespace %s only", i, rule, want.port, want.ns)
				}
			}
			allowed := map[string]bool{}
			for _, rule := range dig(np, "spec", "egress").([]any) {
				to := "any"
				if peers, _ := dig(rule, "to").([]any); len(peers) > 0 {
					to = fmt.Sprint(dig(peers[0], "ipBlock", "cidr"))
					if dig(peers[0], "podSelector") != nil {
						to = "own pods"
					}
				}
				for _, p := range dig(rule, "ports").([]any) {
					allowed[fmt.Sprintf("%v/%v->%s", dig(p, "port"), dig(p, "protocol"), to)] = true
				}
			}
			want := map[string]bool{"53/UDP->any": true, "53/TCP->any": true, "443/TCP->any": true, "22/TCP->203.0.113.10/32": true, "443/TCP->0.0.0.0/0": true, "6443/TCP->0.0.0.0/0": true, "8080/TCP->own pods": true}
			if !reflect.DeepEqual(allowed, want) {
				t.Errorf("egress allows %v, want %v", allowed, want)
			}
			env := envOf(t, r)
			if env["FLAGSYNC_GIT_SSH_KEY_FILE"] != "/etc/flagsync/secrets/ssh-privatekey" || env["FLAGSYNC_GIT_KNOWN_HOSTS"] != "/etc/flagsync/secrets/known_hosts" {
				t.Errorf("SSH key and known_hosts files: %v", env)
			}
			if _, ok := env["FLAGSYNC_GIT_TOKEN_FILE"]; ok {
				t.Error("FLAGSYNC_GIT_TOKEN_FILE set although secret.keys.gitToken is empty")
			}
		}},
		{"single-port-values.yaml", func(t *testing.T, out string, r rendered) {
			env := envOf(t, r)
			if env["FLAGSYNC_ADMIN_LISTEN"] != env["FLAGSYNC_LISTEN"] || env["FLAGSYNC_LISTEN"] != "0.0.0.0:8080" {
				t.Errorf("admin.enabled=false: FLAGSYNC_LISTEN=%q FLAGSYNC_ADMIN_LISTEN=%q, want both the webhook port (one listener)", env["FLAGSYNC_LISTEN"], env["FLAGSYNC_ADMIN_LISTEN"])
			}
			if _, ok := r["Service/flagsync-admin"]; ok {
				t.Error("an admin Service without the admin listener")
			}
			if ann := dig(r.get(t, "Deployment", "flagsync"), "spec", "template", "metadata", "annotations"); dig(ann, "prometheus.io/port") != "8080" {
				t.Errorf("prometheus.io/port = %v, want the webhook port", dig(ann, "prometheus.io/port"))
			}
		}},
		{"inline-secret-values.yaml", func(t *testing.T, out string, r rendered) {
			sec := r.get(t, "Secret", "flagsync")
			data := dig(sec, "data").(map[string]any)
			want := map[string]string{"kameleoon-client-id": "ci-client-id", "kameleoon-client-secret": "ci-client-secret", "webhook-secret": "ci-webhook-secret"}
			if len(data) != len(want) {
				t.Errorf("Secret keys %v, want %v", data, want)
			}
			for k, v := range want {
				got, _ := base64.StdEncoding.DecodeString(fmt.Sprint(data[k]))
				if string(got) != v {
					t.Errorf("Secret %s = %q, want %q", k, got, v)
				}
			}
			env := envOf(t, r)
			for _, name := range []string{"FLAGSYNC_GIT_TOKEN_FILE", "FLAGSYNC_ADMIN_TOKEN_FILE"} {
				if _, ok := env[name]; ok {
					t.Errorf("%s set for a credential the Secret does not hold", name)
				}
			}
			if env["FLAGSYNC_WEBHOOK_SECRET_FILE"] != "/etc/flagsync/secrets/webhook-secret" {
				t.Errorf("FLAGSYNC_WEBHOOK_SECRET_FILE = %q", env["FLAGSYNC_WEBHOOK_SECRET_FILE"])
			}
			if img := dig(r.get(t, "Deployment", "flagsync"), "spec", "template", "spec", "containers", 0, "image"); img != "ghcr.io/flagsync/flagsync@sha256:"+strings.Repeat("0", 64) {
				t.Errorf("image %v: want the digest, not the tag", img)
			}
			if data := dig(r.get(t, "ConfigMap", "flagsync"), "data"); dig(data, "FLAGSYNC_PRUNE") != "true" || dig(data, "FLAGSYNC_MAX_CHANGES") != "100" {
				t.Errorf("config.extra not in the ConfigMap: %v", data)
			}
			if strings.Contains(fmt.Sprint(dig(r.get(t, "ConfigMap", "flagsync"), "data")), "ci-client-secret") {
				t.Error("a credential leaked into the ConfigMap")
			}
		}},
	}
	files, _ := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if len(files) != len(cases) {
		t.Errorf("%d values files in %s/ci, %d cases here: give every values file its checks", len(files), chartDir, len(cases))
	}
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.values, "-values.yaml"), func(t *testing.T) {
			values := filepath.Join(chartDir, "ci", tc.values)
			if out, errOut, err := runHelm(t, helm, "lint", "--strict", chartDir, "-f", values); err != nil {
				t.Fatalf("helm lint --strict -f %s: %v\n%s%s", tc.values, err, out, errOut)
			}
			out, err := helmTemplate(t, helm, "-f", values)
			if err != nil {
				t.Fatal(err)
			}
			r := parseRendered(t, tc.values, out)
			checkDaemonPod(t, tc.values, r)
			if strings.Contains(out, ":latest") || strings.Contains(out, "<no value>") {
				t.Error("rendered output names a :latest image or has <no value>")
			}
			tc.check(t, out, r)
			// NOTES.txt renders only on install; a client-side dry run needs no cluster.
			notes, errOut, err := runHelm(t, helm, "install", "flagsync", chartDir, "--dry-run=client", "--namespace", "flagsync", "-f", values)
			if err != nil {
				t.Fatalf("helm install --dry-run=client: %v\n%s", err, errOut)
			}
			notes = notes[strings.Index(notes, "NOTES:"):]
			if !strings.Contains(notes, "flagsync v0.1.0 syncs ") || !strings.Contains(notes, "/status") || strings.Contains(notes, "<no value>") {
				t.Errorf("NOTES:\n%s", notes)
			}
		})
	}
}

// TestHelmTemplateRefuses proves the chart fails, with a message saying what to set, for
// what it must not deploy.
func TestHelmTemplateRefuses(t *testing.T) {
	helm := helmBinary(t)
	const repo, existing = "config.repo=https://github.com/example/feature-flags.git", "secret.existingSecret=flagsync"
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"no secret", []string{repo}, "secret: no credentials configured. Set secret.existingSecret"},
		{"two replicas without leader election", []string{repo, existing, "replicaCount=2"}, "replicaCount: 2 replicas need leaderElection.enabled=true"},
		{"placeholder secret", []string{repo, "secret.values.kameleoonClientId=abc", "secret.values.kameleoonClientSecret=Replace-Me"}, `secret.values.kameleoonClientSecret: "Replace-Me" is a placeholder`},
		{"existing and inline secret", []string{repo, existing, "secret.values.adminToken=a-real-token"}, "either secret.existingSecret or secret.values, not both"},
		{"unknown credential", []string{repo, "secret.values.kameleoonToken=x"}, "secret.values.kameleoonToken"},
		{"no repository", []string{existing}, "config.repo: set the Git repository"},
		{"latest tag", []string{repo, existing, "image.tag=latest"}, `image.tag: "latest" is refused`},
		{"digest that is not one", []string{repo, existing, "image.digest=sha256:abc"}, "/image/digest"},
		{"budget blocking drains", []string{repo, existing, "podDisruptionBudget.enabled=true"}, "podDisruptionBudget.minAvailable: 1 with replicaCount 1 would block"},
		{"admin port open to all", []string{repo, existing, "admin.enabled=true", "networkPolicy.enabled=true", "networkPolicy.adminFrom=null"}, "networkPolicy.adminFrom"},
		{"credential in the ConfigMap", []string{repo, existing, "config.extra.FLAGSYNC_WEBHOOK_SECRET=x"}, "a credential does not belong in a ConfigMap"},
		{"unknown value", []string{repo, existing, "replicas=2"}, "replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := helmTemplate(t, helm, args...)
			if err == nil {
				t.Fatalf("rendered, want a failure mentioning %q:\n%s", tc.want, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("failed with %v\nwant a message containing %q", err, tc.want)
			}
		})
	}
}

// kustomizeDeployment renders the kustomize base's Deployment: with kustomize, else with
// kubectl's built-in kustomize, else by reading the base's files and applying its images
// transformer (the base has no patches, so that is all kustomize would change in the pod).
func kustomizeDeployment(t *testing.T) (map[string]any, string) {
	t.Helper()
	dir := filepath.Join(deployDir, "kubernetes")
	for _, tool := range [][]string{{"kustomize", "build"}, {"kubectl", "kustomize"}} {
		path, err := exec.LookPath(tool[0])
		if err != nil {
			continue
		}
		out, err := exec.Command(path, tool[1], dir).Output()
		if err != nil {
			t.Fatalf("%s %s %s: %v", tool[0], tool[1], dir, err)
		}
		for _, d := range decodeDocs(t, "kustomize output", bytes.NewReader(out)) {
			if d["kind"] == "Deployment" {
				return d, strings.Join(tool, " ")
			}
		}
		t.Fatalf("%s %s: no Deployment", tool[0], tool[1])
	}
	kust := yamlDocs(t, filepath.Join(dir, "kustomization.yaml"))[0]
	if p := kust["patches"]; p != nil {
		t.Fatalf("the base has patches now: install kustomize to compare the rendered pod")
	}
	var dep map[string]any
	for _, res := range dig(kust, "resources").([]any) {
		for _, d := range yamlDocs(t, filepath.Join(dir, res.(string))) {
			if d["kind"] == "Deployment" {
				dep = d
			}
		}
	}
	if dep == nil {
		t.Fatal("no Deployment among the base's resources")
	}
	for _, c := range dig(dep, "spec", "template", "spec", "containers").([]any) {
		c := c.(map[string]any)
		for _, img := range dig(kust, "images").([]any) {
			if dig(img, "name") != c["image"] {
				continue
			}
			name := fmt.Sprint(dig(img, "newName"))
			if d, ok := dig(img, "digest").(string); ok {
				c["image"] = name + "@" + d
			} else {
				c["image"] = name + ":" + fmt.Sprint(dig(img, "newTag"))
			}
		}
	}
	return dep, "the base's files"
}

// TestHelmPodMatchesKustomizeBase: the chart with default values and an existing Secret
// runs the same hardened pod as the kustomize base.
func TestHelmPodMatchesKustomizeBase(t *testing.T) {
	helm := helmBinary(t)
	out, err := helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci", "default-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	chartDep := parseRendered(t, "helm", out).get(t, "Deployment", "flagsync")
	baseDep, how := kustomizeDeployment(t)
	t.Logf("kustomize base rendered with %s", how)

	sortedEnv := func(v any) any {
		l, _ := v.([]any)
		l = append([]any(nil), l...)
		sort.Slice(l, func(i, j int) bool { return fmt.Sprint(dig(l[i], "name")) < fmt.Sprint(dig(l[j], "name")) })
		return l
	}
	podPaths := [][]any{
		{"securityContext"}, {"automountServiceAccountToken"}, {"serviceAccountName"},
		{"terminationGracePeriodSeconds"}, {"volumes"},
	}
	containerPaths := [][]any{
		{"image"}, {"args"}, {"envFrom"}, {"ports"}, {"livenessProbe"}, {"readinessProbe"},
		{"startupProbe"}, {"resources"}, {"securityContext"}, {"volumeMounts"},
	}
	compare := func(what string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			ya, _ := yaml.Marshal(a)
			yb, _ := yaml.Marshal(b)
			t.Errorf("%s differs:\nhelm chart:\n%s\nkustomize base:\n%s", what, ya, yb)
		}
	}
	compare("spec.replicas", dig(chartDep, "spec", "replicas"), dig(baseDep, "spec", "replicas"))
	compare("spec.strategy", dig(chartDep, "spec", "strategy"), dig(baseDep, "spec", "strategy"))
	chartPod, basePod := dig(chartDep, "spec", "template", "spec"), dig(baseDep, "spec", "template", "spec")
	for _, p := range podPaths {
		compare(fmt.Sprint("pod ", p), dig(chartPod, p...), dig(basePod, p...))
	}
	chartC, baseC := dig(chartPod, "containers", 0), dig(basePod, "containers", 0)
	if n := len(dig(basePod, "containers").([]any)); n != 1 {
		t.Fatalf("the base has %d containers", n)
	}
	for _, p := range containerPaths {
		compare(fmt.Sprint("container ", p), dig(chartC, p...), dig(baseC, p...))
	}
	compare("container env (by name)", sortedEnv(dig(chartC, "env")), sortedEnv(dig(baseC, "env")))
	for _, k := range []string{"prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path"} {
		compare("pod annotation "+k, dig(chartDep, "spec", "template", "metadata", "annotations", k), dig(baseDep, "spec", "template", "metadata", "annotations", k))
	}
}

// TestKustomizeBaseShipsNoSecret: the base deploys no placeholder credential; the example
// Secret lives outside it and says the daemon refuses placeholders.
func TestKustomizeBaseShipsNoSecret(t *testing.T) {
	dir := filepath.Join(deployDir, "kubernetes")
	kust := yamlDocs(t, filepath.Join(dir, "kustomization.yaml"))[0]
	for _, res := range dig(kust, "resources").([]any) {
		for _, d := range yamlDocs(t, filepath.Join(dir, res.(string))) {
			if d["kind"] == "Secret" {
				t.Errorf("%s: the base ships a Secret", res)
			}
		}
	}
	if kust["secretGenerator"] != nil {
		t.Error("the base generates a Secret")
	}
	example := filepath.Join(dir, "examples", "secret.example.yaml")
	raw, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "refuses to start with an empty or placeholder secret") {
		t.Errorf("%s: the header does not say that placeholders are refused", example)
	}
	if docs := yamlDocs(t, example); len(docs) != 1 || docs[0]["kind"] != "Secret" {
		t.Errorf("%s: want one Secret", example)
	}
	var img map[string]any
	for _, i := range dig(kust, "images").([]any) {
		if dig(i, "name") == "flagsync" {
			img = i.(map[string]any)
		}
	}
	chart := yamlDocs(t, filepath.Join(chartDir, "Chart.yaml"))[0]
	if img == nil || img["newTag"] != chart["appVersion"] {
		t.Errorf("kustomize image %v: want newTag = the chart's appVersion %v", img, chart["appVersion"])
	}
}

// TestNoLatestImage: nothing under deploy/ pulls an image by the mutable tag latest.
func TestNoLatestImage(t *testing.T) {
	latestRE := regexp.MustCompile(`[a-z0-9./_-]+:latest\b|newTag:\s*["']?latest\b|\btag:\s*["']?latest\b`)
	err := filepath.WalkDir(deployDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := latestRE.FindString(line); m != "" {
				t.Errorf("%s:%d: %q: pin a release tag or a digest", path, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := latestRE.FindString("image: ghcr.io/flagsync/flagsync:latest"); m == "" {
		t.Error("the check misses :latest")
	}
}

// TestDockerfileBasesPinned: every stage of the image starts from a base pinned by digest.
func TestDockerfileBasesPinned(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{}
	stages := map[string]bool{}
	from := 0
	argRE := regexp.MustCompile(`^ARG\s+([A-Z_]+)=(\S+)`)
	fromRE := regexp.MustCompile(`^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?`)
	pinnedRE := regexp.MustCompile(`^[a-z0-9./_-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}$`)
	for _, line := range strings.Split(string(b), "\n") {
		if m := argRE.FindStringSubmatch(line); m != nil {
			args[m[1]] = m[2]
		}
		m := fromRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		from++
		ref := os.Expand(m[1], func(k string) string { return args[k] })
		if !stages[ref] && !pinnedRE.MatchString(ref) {
			t.Errorf("FROM %s (%s): not pinned by digest", m[1], ref)
		}
		if m[2] != "" {
			stages[m[2]] = true
		}
	}
	if from < 2 {
		t.Errorf("%d FROM lines, want the build and the runtime stage", from)
	}
	if !strings.Contains(string(b), "-trimpath") || !strings.Contains(string(b), "-X github.com/flagsync/flagsync/internal/buildinfo.version=${VERSION}") {
		t.Error("the build lacks -trimpath or the version stamp")
	}
	if regexp.MustCompile(`(?m)^HEALTHCHECK[^\n]*\\\n[^\n]*(127\.0\.0\.1|:8080)`).Match(b) {
		t.Error("HEALTHCHECK hard-codes the address: flagsync healthcheck takes it from FLAGSYNC_LISTEN")
	}
}

// dockerignored reports whether a path (slash-separated, relative to the context) is
// excluded by .dockerignore patterns: a pattern excludes what it matches and everything
// under it; ** matches any number of folders, * and ? stay within one.
func dockerignored(patterns []*regexp.Regexp, path string) bool {
	parts := strings.Split(path, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		for _, p := range patterns {
			if p.MatchString(prefix) {
				return true
			}
		}
	}
	return false
}

func dockerignorePatterns(t *testing.T, text string) []*regexp.Regexp {
	t.Helper()
	var res []*regexp.Regexp
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: exception %q: this test's matcher does not handle exceptions", line)
		}
		p := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(line)), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case p[i] == '*':
				re.WriteString("[^/]*")
			case p[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		re.WriteString("$")
		res = append(res, regexp.MustCompile(re.String()))
	}
	return res
}

// TestDockerignore: the build context leaves out the repository's history and the
// daemon's state, and keeps every file `go build ./cmd/flagsync` reads.
func TestDockerignore(t *testing.T) {
	raw, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	patterns := dockerignorePatterns(t, string(raw))
	for _, p := range []string{".git", ".git/HEAD", ".flagsync/sandbox.json", "schema/ajvcheck/node_modules/ajv/package.json",
		"tools/x/node_modules/y", "flagsync", "cmd/flagsync/flagsync.test", "internal/loader/testdata/a.yaml", "docs/daemon.md"} {
		if !dockerignored(patterns, p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if and .Module .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}", "./cmd/flagsync")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		rel, err := filepath.Rel(root, fields[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fields[1:] {
			needed = append(needed, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if len(needed) < 20 {
		t.Fatalf("go list found only %d files the build needs: %v", len(needed), needed)
	}
	for _, f := range needed {
		if dockerignored(patterns, f) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", f)
		}
	}
}

// TestReleaseWorkflow holds the release to what docs/deploy.md tells users to verify.
func TestReleaseWorkflow(t *testing.T) {
	path := filepath.Join(deployDir, "github-actions", "flagsync-release.yml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wf := yamlDocs(t, path)[0]
	if tags, _ := dig(wf, "on", "push", "tags").([]any); len(tags) != 1 || tags[0] != "v*" {
		t.Errorf("on.push.tags = %v, want [v*]", tags)
	}
	if p, ok := wf["permissions"].(map[string]any); !ok || len(p) != 0 {
		t.Errorf("top-level permissions %v: want {} (each job asks for what it needs)", wf["permissions"])
	}
	usesRE := regexp.MustCompile(`(?m)^\s*(?:-\s+)?uses:\s*(\S+)(.*)$`)
	pinnedRE := regexp.MustCompile(`^[\w.-]+/[\w./-]+@[0-9a-f]{40}$`)
	uses := usesRE.FindAllStringSubmatch(string(raw), -1)
	if len(uses) < 8 {
		t.Errorf("%d actions used, want checkout, setup-go, buildx, login, build-push, cosign, sbom and provenance", len(uses))
	}
	for _, m := range uses {
		if !pinnedRE.MatchString(m[1]) || !regexp.MustCompile(`#\s*v\d`).MatchString(m[2]) {
			t.Errorf("uses: %s%s: pin the action by commit SHA with a # vX.Y.Z comment", m[1], m[2])
		}
	}
	signing := 0
	for name, job := range dig(wf, "jobs").(map[string]any) {
		text, _ := yaml.Marshal(job)
		if strings.Contains(string(text), "cosign sign") || strings.Contains(string(text), "cosign attest") || strings.Contains(string(text), "attest-build-provenance") {
			signing++
			if dig(job, "permissions", "id-token") != "write" {
				t.Errorf("job %s signs without permissions.id-token: write (keyless signing)", name)
			}
		}
	}
	if signing < 3 {
		t.Errorf("%d jobs sign, want the binaries, the image and the chart", signing)
	}
	text := string(raw)
	for _, want := range []string{
		"go build -trimpath",
		`cosign sign --yes "$REF"`, // REF is image@digest
		"REF: ${{ steps.name.outputs.image }}@${{ steps.build.outputs.digest }}",
		"cosign sign-blob --yes --bundle SHA256SUMS.sigstore.json SHA256SUMS",
		"cosign attest --yes --type spdxjson",
		"provenance: mode=max",
		"sbom: true",
		"platforms: linux/amd64,linux/arm64",
		"push-to-registry: true",
		"--draft",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q", path, want)
		}
	}
	// The chart job pins the packaged chart to the image it built by rewriting these two
	// lines of values.yaml with sed: each must exist exactly once.
	values, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^  repository: ghcr\.io/flagsync/flagsync$`, `(?m)^  digest: ""$`} {
		if n := len(regexp.MustCompile(re).FindAllIndex(values, -1)); n != 1 {
			t.Errorf("values.yaml: %d lines match %s, the release's sed wants exactly 1", n, re)
		}
	}
	if !strings.Contains(text, `s|^  repository: .*|  repository: $IMAGE|`) || !strings.Contains(text, `s|^  digest: \"\"$|  digest: \"$DIGEST\"|`) {
		t.Errorf("%s: the chart job no longer pins image.repository and image.digest", path)
	}
	if strings.Contains(text, ":latest") || strings.Contains(text, "goreleaser") {
		t.Errorf("%s: pushes a latest tag or uses goreleaser", path)
	}
}

// TestValuesSchema validates values.yaml, alone and merged with each ci values file,
// against values.schema.json, and proves the schema refuses mistakes. It needs no helm.
func TestValuesSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	schemaPath := filepath.Join(chartDir, "values.schema.json")
	f, err := os.Open(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := c.AddResource("values.schema.json", f); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("values.schema.json")
	if err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	// Every property the schema names says what it is for.
	var raw map[string]any
	b, _ := os.ReadFile(schemaPath)
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var undocumented []string
	var walk func(path string, s map[string]any)
	walk = func(path string, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for k, v := range props {
			p, _ := v.(map[string]any)
			if d, _ := p["description"].(string); d == "" {
				undocumented = append(undocumented, path+k)
			}
			walk(path+k+".", p)
		}
	}
	walk("", raw)
	sort.Strings(undocumented)
	if len(undocumented) > 0 {
		t.Errorf("values.schema.json: no description for %v", undocumented)
	}

	defaults := yamlDocs(t, filepath.Join(chartDir, "values.yaml"))[0]
	validate := func(v map[string]any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			return err
		}
		return schema.Validate(doc)
	}
	if err := validate(defaults); err != nil {
		t.Errorf("values.yaml: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	for _, file := range files {
		if err := validate(mergeValues(defaults, yamlDocs(t, file)[0])); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
	for _, bad := range []map[string]any{
		{"image": map[string]any{"digest": "sha256:abc"}},
		{"config": map[string]any{"logLevel": "loud"}},
		{"replicas": 2},
		{"secret": map[string]any{"values": map[string]any{"kameleonClientId": "x"}}},
		{"securityContext": map[string]any{"privileged": true}},
		{"podSecurityContext": map[string]any{"runAsNonRoot": false}},
		{"livenessProbe": map[string]any{"httpGet": map[string]any{"path": "/metrics", "port": "http"}}},
		{"config": map[string]any{"extra": map[string]any{"HOME": "/"}}},
	} {
		if err := validate(mergeValues(defaults, bad)); err == nil {
			t.Errorf("values %v: accepted by the schema", bad)
		}
	}
}

// mergeValues overlays b on a as Helm does: maps merge key by key, anything else replaces.
func mergeValues(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		am, aok := out[k].(map[string]any)
		bm, bok := v.(map[string]any)
		if aok && bok {
			out[k] = mergeValues(am, bm)
		} else {
			out[k] = v
		}
	}
	return out
}
