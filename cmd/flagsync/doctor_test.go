package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	ksandbox "github.com/flagsync/flagsync/internal/kameleoon/sandbox"
)

func TestDoctorSandbox(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		readings map[string]string // row id → reading, from the JSON report
	}{
		{"default", nil, nil, map[string]string{"env-patch-minimal": "accepted", "release-shape": "local", "rule-order": "position", "optional-fields": "accepted"}},
		{"strict all", []string{"--strict", "all"}, nil, map[string]string{"env-patch-minimal": "refused", "release-shape": "zoned", "rule-order": "order-index", "optional-fields": "refused"}},
		{"strict from the environment", nil, map[string]string{"FLAGSYNC_SANDBOX_STRICT": "env-patch-required"}, map[string]string{"env-patch-minimal": "refused", "rule-order": "position"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "sandbox.json")
			args := append([]string{"doctor", "--sandbox", "--sandbox-state", state, "--site", "pzllysfw2f"}, tc.args...)
			code, out, errOut := runWithEnv(tc.env, args...)
			if code != exitOK {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			first, _, _ := strings.Cut(out, "\n")
			if !strings.Contains(first, "at most 25 API calls") || !strings.Contains(first, "scratch flag flagsync_doctor_") {
				t.Errorf("first line does not state the budget and the scratch flag: %q", first)
			}
			if strict := len(tc.args) > 0 || len(tc.env) > 0; strict != strings.Contains(first, "; strict env-patch-required") {
				t.Errorf("first line does not say which strict variants the sandbox follows: %q", first)
			}
			for _, w := range []string{"behaviour", "expected by flagsync", "observed", "consequence", "ok    create with environments", "API calls used: ", "of at most 25", ": archived", "flagsync can manage this account"} {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "FAIL") {
				t.Errorf("a row fails:\n%s", out)
			}

			code, out, errOut = runWithEnv(tc.env, append(args, "--format", "json")...)
			if code != exitOK {
				t.Fatalf("--format json: exit %d\n%s\n%s", code, out, errOut)
			}
			var rep struct {
				Rows []struct{ ID, Reading, Observed string } `json:"rows"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Rows {
				if want, ok := tc.readings[r.ID]; ok && r.Reading != want {
					t.Errorf("row %s: reading %q (%s), want %q", r.ID, r.Reading, r.Observed, want)
				}
			}
		})
	}
}

func TestDoctorJSON(t *testing.T) {
	state := filepath.Join(t.TempDir(), "sandbox.json")
	code, out, errOut := runWithEnv(nil, "doctor", "--sandbox", "--sandbox-state", state, "--site", "pzllysfw2f", "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var rep struct {
		FormatVersion int    `json:"format_version"`
		CallsUsed     int    `json:"calls_used"`
		CallsBudget   int    `json:"calls_budget"`
		ScratchFlag   string `json:"scratch_flag"`
		Archived      bool   `json:"archived"`
		Rows          []struct {
			ID    string `json:"id"`
			Holds *bool  `json:"holds"`
		} `json:"rows"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Errorf("stdout holds more than the JSON object")
	}
	if rep.FormatVersion != 1 || rep.CallsBudget != 25 || rep.CallsUsed == 0 || rep.CallsUsed > 25 || !rep.Archived || len(rep.Rows) == 0 {
		t.Errorf("report: %+v", rep)
	}
	if !strings.Contains(errOut, "at most 25 API calls") {
		t.Errorf("the preface is not on stderr with --format json:\n%s", errOut)
	}
}

// TestDoctorExitOne: a behaviour flagsync relies on is broken in front of the sandbox
// (a create with environments is refused): exit 1, with what to do.
func TestDoctorExitOne(t *testing.T) {
	sb, err := ksandbox.New(ksandbox.Options{ClientID: "ci", ClientSecret: "ci-secret-value"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/feature-flags" {
			body, _ := io.ReadAll(r.Body)
			if bytes.Contains(body, []byte("environmentConfigurations")) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"message":"environmentConfigurations: not accepted","status":400}`)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		sb.ServeHTTP(w, r)
	}))
	defer ts.Close()
	env := map[string]string{"KAMELEOON_CLIENT_ID": "ci", "KAMELEOON_CLIENT_SECRET": "ci-secret-value", "KAMELEOON_API_URL": ts.URL}
	code, out, errOut := runWithEnv(env, "doctor", "--site", "pzllysfw2f", "--retry-base", "10ms")
	if code != exitFail {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, w := range []string{"FAIL  create with environments", "refused (400:", "To do: ", "do not hold or could not be probed: create-environments", ": archived"} {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out+errOut, "ci-secret-value") {
		t.Error("the client secret was printed")
	}
}

func TestDoctorUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"doctor"}, "--site"},
		{[]string{"doctor", "--site", "short"}, "--site"},
		{[]string{"doctor", "--site", "pzllysfw2f", "--format", "xml"}, "--format"},
		{[]string{"doctor", "--site", "pzllysfw2f", "--strict", "all"}, "--strict goes with --sandbox"},
		{[]string{"doctor", "--site", "pzllysfw2f", "--sandbox", "--strict", "bogus"}, "unknown"},
		{[]string{"doctor", "--site", "pzllysfw2f", "--environments", "development"}, "two different environment keys"},
		{[]string{"doctor", "--site", "pzllysfw2f", "--sandbox", "--api-url", "http://127.0.0.1:1"}, "--sandbox excludes"},
		{[]string{"doctor", "--site", "pzllysfw2f", "extra"}, "unexpected argument"},
	} {
		code, _, errOut := runWithEnv(nil, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 64 and %q", tc.args, code, errOut, tc.want)
		}
	}
	// Without credentials and without --sandbox: a runtime error that says what to set.
	code, _, errOut := runWithEnv(nil, "doctor", "--site", "pzllysfw2f")
	if code != exitFail || !strings.Contains(errOut, "KAMELEOON_CLIENT_ID") || !strings.Contains(errOut, "--sandbox") {
		t.Errorf("no credentials: exit %d, stderr %q", code, errOut)
	}
}
