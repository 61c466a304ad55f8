package splitclient

import (
	"fmt"
	"os"
	"strings"
)

// Environment variables ConfigFromEnv reads. The key may instead be read from the file
// named by SPLIT_ADMIN_API_KEY_FILE (Docker and Kubernetes secrets); the variable itself
// wins when both are set.
const (
	EnvAdminAPIKey = "SPLIT_ADMIN_API_KEY"
	EnvAPIURL      = "SPLIT_API_URL"
)

// ConfigFromEnv returns a Config with the admin API key and base URL from the
// environment, read through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	key := strings.TrimSpace(getenv(EnvAdminAPIKey))
	if key == "" {
		if path := getenv(EnvAdminAPIKey + "_FILE"); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return Config{}, fmt.Errorf("read %s_FILE: %w", EnvAdminAPIKey, err)
			}
			key = strings.TrimSpace(string(b))
		}
	}
	if key == "" {
		return Config{}, fmt.Errorf("split credentials: %s (or %s_FILE) not set", EnvAdminAPIKey, EnvAdminAPIKey)
	}
	return Config{BaseURL: strings.TrimSpace(getenv(EnvAPIURL)), APIKey: key}, nil
}
