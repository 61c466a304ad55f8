package leader

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("not-a-real-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "absent")
	inCluster := func(k string) string {
		if k == "KUBERNETES_SERVICE_HOST" {
			return "10.96.0.1"
		}
		return ""
	}
	outside := func(string) string { return "" }

	tests := []struct {
		name     string
		mode     Mode
		lock     string
		env      Environment
		want     Backend
		warn     bool
		errField string
	}{
		{"auto in a cluster with a token", ModeAuto, "", Environment{Getenv: inCluster, TokenFile: token}, BackendLease, false, ""},
		{"auto in a cluster without a token", ModeAuto, "", Environment{Getenv: inCluster, TokenFile: missing}, BackendNone, true, ""},
		{"auto outside with a lock file", ModeAuto, "/shared/flagsync.lock", Environment{Getenv: outside, TokenFile: token}, BackendFile, false, ""},
		{"auto in a cluster with a lock file: the explicit lock wins", ModeAuto, "/shared/flagsync.lock", Environment{Getenv: inCluster, TokenFile: token}, BackendFile, false, ""},
		{"auto outside, nothing given", "", "", Environment{Getenv: outside, TokenFile: token}, BackendNone, false, ""},
		{"token but no service host", ModeAuto, "", Environment{Getenv: outside, TokenFile: token}, BackendNone, false, ""},
		{"lease forced", ModeLease, "", Environment{Getenv: outside, TokenFile: missing}, BackendLease, false, ""},
		{"file without a path", ModeFile, "", Environment{Getenv: outside}, "", false, "Path"},
		{"file", ModeFile, "/x.lock", Environment{Getenv: outside}, BackendFile, false, ""},
		{"none", ModeNone, "/x.lock", Environment{Getenv: inCluster, TokenFile: token}, BackendNone, false, ""},
		{"unknown mode", "sometimes", "", Environment{}, "", false, "Mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Detect(tc.mode, tc.lock, tc.env)
			if tc.errField != "" {
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Field != tc.errField {
					t.Fatalf("err %v, want a ConfigError on %s", err, tc.errField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Backend != tc.want || (d.Warning != "") != tc.warn || d.Reason == "" {
				t.Errorf("got %+v, want backend %s, warning %t", d, tc.want, tc.warn)
			}
			if tc.warn && !strings.Contains(d.Warning, "without leader election") {
				t.Errorf("warning %q does not say there is no election", d.Warning)
			}
		})
	}
}

func TestNewFromDecision(t *testing.T) {
	e, err := New(Decision{Backend: BackendNone}, Options{Identity: "x"})
	if err != nil || e.Status().Role != RoleNone {
		t.Fatalf("none: %v %v", e, err)
	}
	e, err = New(Decision{Backend: BackendFile}, Options{Identity: "x", LockPath: filepath.Join(t.TempDir(), "l")})
	if err != nil || e.Status().Backend != BackendFile {
		t.Fatalf("file: %v %v", e, err)
	}
	dir := t.TempDir()
	ns := filepath.Join(dir, "namespace")
	if err := os.WriteFile(ns, []byte("flags\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	le, err := New(Decision{Backend: BackendLease}, Options{Identity: "x", Lease: LeaseConfig{NamespaceFile: ns, Client: newCluster(t).client}})
	if err != nil {
		t.Fatalf("lease: %v", err)
	}
	if got := le.(*LeaseElector).namespace; got != "flags" {
		t.Errorf("namespace %q, want the service account's, trimmed", got)
	}
	if _, err := New(Decision{Backend: BackendLease}, Options{Lease: LeaseConfig{NamespaceFile: filepath.Join(dir, "absent"), Client: newCluster(t).client}}); err == nil {
		t.Error("lease without a namespace: no error")
	}
}
