package splitclient

import (
	"fmt"
	"net/http"
	"strings"
)

// How the API key is sent (Config.KeyHeader).
const (
	// KeyHeaderAuto sends a Harness key (a personal access token "pat." or a service
	// account token "sat.") in x-api-key and any other key as Authorization: Bearer.
	KeyHeaderAuto = "auto"
	// KeyHeaderBearer sends Authorization: Bearer <key>, as Split's Admin API documents.
	KeyHeaderBearer = "bearer"
	// KeyHeaderXAPIKey sends x-api-key: <key>, as the Harness FME API documents.
	KeyHeaderXAPIKey = "x-api-key"
)

// harnessKeyPrefixes start Harness's API tokens: personal access tokens and service
// account tokens.
var harnessKeyPrefixes = []string{"pat.", "sat."}

// keyHeaderOf resolves the header mode for key: KeyHeaderBearer or KeyHeaderXAPIKey.
func keyHeaderOf(mode, key string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(mode)) {
	case "", KeyHeaderAuto:
		for _, p := range harnessKeyPrefixes {
			if strings.HasPrefix(key, p) {
				return KeyHeaderXAPIKey, nil
			}
		}
		return KeyHeaderBearer, nil
	case KeyHeaderBearer:
		return KeyHeaderBearer, nil
	case KeyHeaderXAPIKey:
		return KeyHeaderXAPIKey, nil
	}
	return "", fmt.Errorf("key header %q: want %s, %s or %s", mode, KeyHeaderAuto, KeyHeaderBearer, KeyHeaderXAPIKey)
}

// xAPIKeyTransport adds the key in an x-api-key header to every request.
type xAPIKeyTransport struct {
	base http.RoundTripper
	key  string
}

// RoundTrip sends r with the x-api-key header, on a copy of the request.
func (t xAPIKeyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("x-api-key", t.key)
	return t.base.RoundTrip(r)
}

// withXAPIKey returns a copy of hc whose requests carry key in x-api-key.
func withXAPIKey(hc *http.Client, key string) *http.Client {
	out := *hc
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = xAPIKeyTransport{base: base, key: key}
	return &out
}
