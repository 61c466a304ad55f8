package kclient

import (
	"fmt"
	"os"
	"strings"
)

// Environment variables ConfigFromEnv reads. Each credential may instead be read from
// the file named by the same variable with a _FILE suffix (Docker and Kubernetes
// secrets); the variable itself wins when both are set.
const (
	EnvClientID     = "KAMELEOON_CLIENT_ID"
	EnvClientSecret = "KAMELEOON_CLIENT_SECRET"
	EnvAPIURL       = "KAMELEOON_API_URL"
)

// ConfigFromEnv returns a Config with the credentials, the base URL and how token
// requests are charged (EnvTokenCounts) from the environment, read through getenv
// (os.Getenv in main). Other fields are left at their defaults.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	id, err := fromEnvOrFile(getenv, EnvClientID)
	if err != nil {
		return Config{}, err
	}
	secret, err := fromEnvOrFile(getenv, EnvClientSecret)
	if err != nil {
		return Config{}, err
	}
	var missing []string
	if id == "" {
		missing = append(missing, EnvClientID+" (or "+EnvClientID+"_FILE)")
	}
	if secret == "" {
		missing = append(missing, EnvClientSecret+" (or "+EnvClientSecret+"_FILE)")
	}
	if len(missing) > 0 {
		return Config{}, fmt.Errorf("kameleoon credentials: %s not set", strings.Join(missing, " and "))
	}
	counts, err := TokenCountingFromEnv(getenv)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{BaseURL: strings.TrimSpace(getenv(EnvAPIURL)), ClientID: id, ClientSecret: secret}
	if counts != TokenCountsNo {
		cfg.TokenCounts = counts
	}
	return cfg, nil
}

func fromEnvOrFile(getenv func(string) string, name string) (string, error) {
	if v := strings.TrimSpace(getenv(name)); v != "" {
		return v, nil
	}
	path := getenv(name + "_FILE")
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		// The error names the file, never its content.
		return "", fmt.Errorf("read %s_FILE: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}
