package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzSecret is the secret FuzzVerify signs with.
const fuzzSecret = "fuzz-secret-c4n4ry"

// verifyCase is one way a provider carries its signature.
type verifyCase struct {
	provider string
	// put places the fuzzed signature (and, for GitLab's signed form, id and
	// timestamp) into the headers.
	put func(hd http.Header, sig, id, ts string)
	// correct returns the one header value that must verify.
	correct func(body []byte, id, ts string) string
	// matches is the oracle: whether sig is a correct signature (up to hex case).
	matches func(sig string, body []byte, id, ts string) bool
}

func fuzzHexMAC(body []byte) string {
	m := hmac.New(sha256.New, []byte(fuzzSecret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func fuzzStandardMAC(body []byte, id, ts string) string {
	m := hmac.New(sha256.New, []byte(fuzzSecret))
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func hexCase(provider, header, prefix string) verifyCase {
	return verifyCase{
		provider: provider,
		put:      func(hd http.Header, sig, _, _ string) { hd.Set(header, sig) },
		correct:  func(body []byte, _, _ string) string { return prefix + fuzzHexMAC(body) },
		matches: func(sig string, body []byte, _, _ string) bool {
			rest, ok := strings.CutPrefix(sig, prefix)
			return ok && strings.EqualFold(rest, fuzzHexMAC(body))
		},
	}
}

var verifyCases = []verifyCase{
	hexCase(ProviderGitHub, "X-Hub-Signature-256", "sha256="),
	hexCase(ProviderGitea, "X-Gitea-Signature", ""),
	hexCase(ProviderForgejo, "X-Forgejo-Signature", ""),
	hexCase(ProviderGogs, "X-Gogs-Signature", ""),
	hexCase(ProviderBitbucketCloud, "X-Hub-Signature", "sha256="),
	hexCase(ProviderBitbucketServer, "X-Hub-Signature", "sha256="),
	hexCase(ProviderGeneric, "X-Flagsync-Signature", "sha256="),
	{
		provider: ProviderGitLab, // secret token
		put:      func(hd http.Header, sig, _, _ string) { hd.Set("X-Gitlab-Token", sig) },
		correct:  func([]byte, string, string) string { return fuzzSecret },
		matches:  func(sig string, _ []byte, _, _ string) bool { return sig == fuzzSecret },
	},
	{
		provider: ProviderGitLab, // signing token, Standard Webhooks form
		put: func(hd http.Header, sig, id, ts string) {
			hd.Set("webhook-signature", sig)
			hd.Set("webhook-id", id)
			hd.Set("webhook-timestamp", ts)
		},
		correct: func(body []byte, id, ts string) string { return "v1," + fuzzStandardMAC(body, id, ts) },
		matches: func(sig string, body []byte, id, ts string) bool {
			if id == "" || !freshTimestamp(ts) {
				return false
			}
			want := "v1," + fuzzStandardMAC(body, id, ts)
			for i, f := range strings.Fields(sig) {
				if i == maxStandardSignatures {
					break
				}
				if f == want {
					return true
				}
			}
			return false
		},
	},
}

// freshTimestamp is the oracle's own reading of the 5-minute window around testNow.
func freshTimestamp(ts string) bool {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	d := n - testNow.Unix()
	return -300 <= d && d <= 300
}

// FuzzVerify feeds arbitrary signature headers, bodies, ids and timestamps to every
// provider's verification: it must never panic, never accept a signature the oracle
// calls wrong, and always accept the correct one (when the timestamp is fresh).
func FuzzVerify(f *testing.F) {
	body := []byte(`{"ref":"refs/heads/main","after":"` + shaAfter + `"}`)
	ts := strconv.FormatInt(testNow.Unix(), 10)
	for i, c := range verifyCases {
		f.Add(uint8(i), c.correct(body, "msg_1", ts), body, "msg_1", ts)
		f.Add(uint8(i), "", body, "", "")
		f.Add(uint8(i), "sha256="+strings.Repeat("0", 64), body, "msg_1", ts)
		f.Add(uint8(i), "v1,"+strings.Repeat("A", 43)+"= v1,", []byte{}, "msg_1", "-1")
	}
	k := newKeys([]byte(fuzzSecret))
	f.Fuzz(func(t *testing.T, which uint8, sig string, body []byte, id, ts string) {
		c := verifyCases[int(which)%len(verifyCases)]

		hd := http.Header{}
		c.put(hd, sig, id, ts)
		err := verify(c.provider, hd, body, k, testNow)
		if err == nil && !c.matches(sig, body, id, ts) {
			t.Fatalf("%s accepted a wrong signature %q (id %q, ts %q)", c.provider, sig, id, ts)
		}
		if err != nil && err != errMissing && err != errMismatch && err != errStale {
			t.Fatalf("%s: unexpected error %v", c.provider, err)
		}

		right := c.correct(body, id, ts)
		hd = http.Header{}
		c.put(hd, right, id, ts)
		err = verify(c.provider, hd, body, k, testNow)
		if c.matches(right, body, id, ts) && err != nil {
			t.Fatalf("%s refused the correct signature (id %q, ts %q): %v", c.provider, id, ts, err)
		}
	})
}

// FuzzParse feeds arbitrary bytes to every payload parser: none may panic, and what
// they accept must be usable (a commit id for an accepted branch, unique file names).
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"push":{"changes":[{"new":null,"old":null}]}}`))
	f.Add([]byte(`{"changes":[{"ref":null,"refId":"refs/heads/main","toHash":"` + shaAfter + `"}]}`))
	f.Add([]byte(`{"ref":"main","after":"` + shaAfter + `","commits":[{"added":null}],"total_commits":-1}`))
	providers := []string{ProviderGitHub, ProviderGitLab, ProviderGitea, ProviderBitbucketCloud, ProviderBitbucketServer, ProviderGeneric}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, provider := range providers {
			p, err := parse(provider, body)
			if err != nil {
				continue
			}
			c, reason := p.find("main")
			if reason != "" {
				continue
			}
			if c.kind != refBranch || c.name != "main" || c.deleted || !isCommitID(c.after) {
				t.Fatalf("%s accepted an unusable change %+v from %q", provider, c, body)
			}
			seen := map[string]bool{}
			for _, f := range c.files {
				if seen[f] {
					t.Fatalf("%s listed %q twice", provider, f)
				}
				seen[f] = true
			}
		}
	})
}
