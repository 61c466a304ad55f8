package ksandbox

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

// benchServer is a sandbox holding n flags like baseFlag, and a token for it. Calls go
// straight to ServeHTTP so the figures are the sandbox's own cost, not the loopback's.
func benchServer(b *testing.B, n int) (*Server, string) {
	b.Helper()
	s, err := New(Options{RatePer10s: -1, RatePerHour: -1})
	if err != nil {
		b.Fatal(err)
	}
	form := "grant_type=client_credentials&client_id=sandbox&client_secret=sandbox"
	rec := serve(s, "POST", "/oauth/token", "application/x-www-form-urlencoded", form, "")
	tok := strings.Split(strings.Split(rec.Body.String(), `"access_token":"`)[1], `"`)[0]
	for i := range n {
		body := strings.Replace(baseFlag, `"featureKey": "base"`, fmt.Sprintf(`"featureKey": "f%05d"`, i), 1)
		if rec := serve(s, "POST", "/feature-flags", "application/json", body, tok); rec.Code != 201 {
			b.Fatalf("seed: %d %s", rec.Code, rec.Body)
		}
	}
	return s, tok
}

func serve(s *Server, method, path, ct, body, tok string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// BenchmarkCalls reports the sandbox's time per call with 1,000 flags stored.
func BenchmarkCalls(b *testing.B) {
	s, tok := benchServer(b, 1000)
	patch := `{"rolloutRules": [{"id": %d, "name": "beta", "type": "TARGETED_DELIVERY", "exposition": %d, "variationKey": "on"}]}`
	for _, bc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"list-100-all-fields", "GET", "/feature-flags?perPage=100&optionalFields=" + strings.Join(OptionalFields, ","), "", 200},
		{"get", "GET", "/feature-flags/pzllysfw2f/f00500", "", 200},
		{"patch-environment", "PATCH", "/feature-flags/pzllysfw2f/f00500/production", "", 200},
		{"create", "POST", "/feature-flags", "", 201},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s.ResetCalls()
			i := 0
			for b.Loop() {
				body := bc.body
				switch bc.name {
				case "patch-environment":
					body = fmt.Sprintf(patch, 20557+2*500, i%100)
				case "create":
					body = flagBody(fmt.Sprintf("new_%s_%d", b.Name()[len(b.Name())-1:], i), "")
					body = strings.Replace(body, "new_", fmt.Sprintf("n%d_", b.N), 1)
				}
				if rec := serve(s, bc.method, bc.path, "application/json", body, tok); rec.Code != bc.status {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
				i++
			}
		})
	}
}
