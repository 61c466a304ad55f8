package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Verification failures. Their messages go into the 401 response and the log, so they
// name what failed and never carry a header value or the secret.
var (
	errMissing  = errors.New("missing signature")
	errMismatch = errors.New("signature does not match")
	errStale    = errors.New("signature timestamp outside the accepted window")
)

// StandardWebhooksTolerance is how far a signed GitLab delivery's webhook-timestamp may
// be from the handler's clock, either way, before it is refused as a replay.
const StandardWebhooksTolerance = 5 * time.Minute

// maxStandardSignatures bounds the work a webhook-signature header can ask for.
const maxStandardSignatures = 16

// keys are the secret in the forms the providers use it.
type keys struct {
	secret []byte // HMAC key for hex signatures; GitLab's plain token
	// standard is the HMAC key of the Standard Webhooks form GitLab's signing token
	// uses: the base64 after "whsec_", decoded. A secret without that prefix (or that
	// does not decode) is used as its own bytes.
	standard []byte
	// secretSum is SHA-256(secret), so a plain token is compared in constant time
	// without the comparison depending on the secret's length.
	secretSum [sha256.Size]byte
}

func newKeys(secret []byte) keys {
	k := keys{secret: append([]byte(nil), secret...)}
	k.standard = k.secret
	if rest, ok := strings.CutPrefix(string(secret), "whsec_"); ok {
		if dec, err := base64.StdEncoding.DecodeString(rest); err == nil && len(dec) > 0 {
			k.standard = dec
		}
	}
	k.secretSum = sha256.Sum256(k.secret)
	return k
}

// verify checks a request's signature (or GitLab token) against the secret, before
// anything reads the body. It returns nil, errMissing, errMismatch or errStale.
func verify(provider string, hd http.Header, body []byte, k keys, now time.Time) error {
	switch provider {
	case ProviderGitHub:
		return verifyHex(hd.Get("X-Hub-Signature-256"), "sha256=", body, k.secret)
	case ProviderForgejo:
		return verifyHex(firstHeader(hd, "X-Forgejo-Signature", "X-Gitea-Signature", "X-Gogs-Signature"), "", body, k.secret)
	case ProviderGitea:
		return verifyHex(firstHeader(hd, "X-Gitea-Signature", "X-Gogs-Signature"), "", body, k.secret)
	case ProviderGogs:
		return verifyHex(hd.Get("X-Gogs-Signature"), "", body, k.secret)
	case ProviderBitbucketCloud, ProviderBitbucketServer:
		return verifyHex(hd.Get("X-Hub-Signature"), "sha256=", body, k.secret)
	case ProviderGeneric:
		return verifyHex(hd.Get("X-Flagsync-Signature"), "sha256=", body, k.secret)
	case ProviderGitLab:
		// A signed delivery is judged by its signature alone: GitLab may also send a
		// secret token that was configured separately from the signing token.
		if hd.Get("webhook-signature") != "" {
			return verifyStandard(hd.Get("webhook-id"), hd.Get("webhook-timestamp"), hd.Get("webhook-signature"), body, k.standard, now)
		}
		return verifyToken(hd.Get("X-Gitlab-Token"), k)
	}
	return errMissing
}

// verifyHex checks value == prefix + hex(HMAC-SHA256(key, body)); hex of either case.
func verifyHex(value, prefix string, body, key []byte) error {
	if value == "" {
		return errMissing
	}
	digits, ok := strings.CutPrefix(value, prefix)
	if !ok {
		return errMismatch
	}
	got, err := hex.DecodeString(digits)
	if err != nil || len(got) != sha256.Size {
		return errMismatch
	}
	if !hmac.Equal(got, hmacSHA256(key, body)) {
		return errMismatch
	}
	return nil
}

// verifyToken compares GitLab's plain X-Gitlab-Token with the secret in constant time
// (hashes of equal length are compared, so neither content nor length leaks).
func verifyToken(token string, k keys) error {
	if token == "" {
		return errMissing
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], k.secretSum[:]) != 1 {
		return errMismatch
	}
	return nil
}

// verifyStandard checks a Standard Webhooks signature, the form GitLab's signing token
// uses: webhook-signature holds space-separated "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>" entries, any one of which may match; other versions are skipped.
// The timestamp (Unix seconds) must be within StandardWebhooksTolerance of now. The
// signature is checked first, so errStale means an authentic but old (or replayed)
// delivery.
func verifyStandard(id, timestamp, signatures string, body, key []byte, now time.Time) error {
	if signatures == "" {
		return errMissing
	}
	if id == "" || timestamp == "" {
		return errMismatch
	}
	seconds, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errMismatch
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	want := []byte(base64.StdEncoding.EncodeToString(m.Sum(nil)))

	matched := false
	for i, entry := range strings.Fields(signatures) {
		if i == maxStandardSignatures {
			break
		}
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(sig), want) == 1 {
			matched = true
		}
	}
	if !matched {
		return errMismatch
	}
	// Compared in whole seconds: no time.Time arithmetic to overflow on absurd values.
	window, current := int64(StandardWebhooksTolerance/time.Second), now.Unix()
	if seconds < current-window || seconds > current+window {
		return errStale
	}
	return nil
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}
