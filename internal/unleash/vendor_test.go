package unleash_test

import (
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/unleash"
)

func TestConnect(t *testing.T) {
	env := map[string]string{"UNLEASH_URL": "https://unleash.example.com/api", "UNLEASH_ADMIN_TOKEN": "*:*.secret"}
	v, c, err := unleash.Connect(func(k string) string { return env[k] }, nil, nil)
	if err != nil || v.Service() != "Unleash" || c.BaseURL() != "https://unleash.example.com" {
		t.Fatalf("Connect = %v, %v, %v", v, c, err)
	}
	delete(env, "UNLEASH_ADMIN_TOKEN")
	if _, _, err := unleash.Connect(func(k string) string { return env[k] }, nil, nil); err == nil || !strings.Contains(err.Error(), "UNLEASH_ADMIN_TOKEN") {
		t.Errorf("without a token: %v", err)
	}
}
