package unleashclient

import (
	"fmt"
	"os"
	"strings"
)

// Environment variables ConfigFromEnv reads. The token may instead be read from the file
// named by UNLEASH_ADMIN_TOKEN_FILE (Docker and Kubernetes secrets); the variable itself
// wins when both are set.
const (
	EnvAdminToken = "UNLEASH_ADMIN_TOKEN"
	EnvURL        = "UNLEASH_URL"
)

// ConfigFromEnv returns a Config with the admin token and the server's URL from the
// environment, read through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	token := strings.TrimSpace(getenv(EnvAdminToken))
	if token == "" {
		if path := getenv(EnvAdminToken + "_FILE"); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return Config{}, fmt.Errorf("read %s_FILE: %w", EnvAdminToken, err)
			}
			token = strings.TrimSpace(string(b))
		}
	}
	if token == "" {
		return Config{}, fmt.Errorf("unleash credentials: %s (or %s_FILE) not set", EnvAdminToken, EnvAdminToken)
	}
	base := strings.TrimSpace(getenv(EnvURL))
	if base == "" {
		return Config{}, fmt.Errorf("unleash server: %s not set (the server's URL, e.g. https://unleash.example.com)", EnvURL)
	}
	return Config{BaseURL: base, Token: token}, nil
}
