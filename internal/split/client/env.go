package splitclient

import (
	"fmt"
	"os"
	"strings"
)

// Environment variables ConfigFromEnv reads. A key may instead be read from the file
// named by the variable with _FILE appended (Docker and Kubernetes secrets); the variable
// itself wins when both are set. SPLIT_ADMIN_API_KEY (an Admin API key) wins over
// SPLIT_API_KEY (the Harness-era name, for a Split admin key or a Harness PAT/SAT).
const (
	EnvAdminAPIKey = "SPLIT_ADMIN_API_KEY"
	EnvAPIKey      = "SPLIT_API_KEY"
	EnvAPIURL      = "SPLIT_API_URL"
	// EnvKeyHeader chooses how the key is sent: auto (default), bearer or x-api-key.
	EnvKeyHeader = "SPLIT_API_KEY_HEADER"
	// EnvChangeTitle and EnvChangeComment are the text/template templates of the title
	// and comment sent with every definition write and change request.
	EnvChangeTitle   = "SPLIT_CHANGE_TITLE"
	EnvChangeComment = "SPLIT_CHANGE_COMMENT"
	// EnvChangeApprovers lists the approvers (emails, comma-separated) of the change
	// requests flagsync files in environments that require approvals.
	EnvChangeApprovers = "SPLIT_CHANGE_APPROVERS"
	// EnvApprovalEnvironments lists the environments (names, comma-separated) that
	// require approvals, known so from the first read (Config.ApprovalEnvironments).
	EnvApprovalEnvironments = "SPLIT_APPROVAL_ENVIRONMENTS"
	// EnvRolloutStatus is the rollout status id sent with change requests (optional).
	EnvRolloutStatus = "SPLIT_ROLLOUT_STATUS_ID"
	// EnvPRURL is the pull request the synced revision came from, for titles, comments
	// and change requests ({{.PR}}).
	EnvPRURL = "FLAGSYNC_PR_URL"
)

// ConfigFromEnv returns a Config with the API key, base URL, key header, change
// templates, approvers, environments that require approvals and pull request link from the environment, read through getenv.
// The templates are checked here, so that a mistake stops the run before any call.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	key, err := keyFromEnv(getenv, EnvAdminAPIKey)
	if err != nil {
		return Config{}, err
	}
	if key == "" {
		if key, err = keyFromEnv(getenv, EnvAPIKey); err != nil {
			return Config{}, err
		}
	}
	if key == "" {
		return Config{}, fmt.Errorf("split credentials: %s (or %s_FILE) not set, nor %s (or %s_FILE)", EnvAdminAPIKey, EnvAdminAPIKey, EnvAPIKey, EnvAPIKey)
	}
	cfg, err := SettingsFromEnv(getenv)
	if err != nil {
		return Config{}, err
	}
	cfg.BaseURL, cfg.APIKey = strings.TrimSpace(getenv(EnvAPIURL)), key
	return cfg, nil
}

// SettingsFromEnv returns a Config with what ConfigFromEnv reads but the key and the
// base URL: the key header, the change templates, approvers, environments that require
// approvals, rollout status and pull request link, read through getenv. It checks the key header's mode and the templates,
// so that a mistake stops the run before any call; the embedded sandbox, whose key is
// its own, takes these settings from it.
func SettingsFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		KeyHeader:       strings.TrimSpace(getenv(EnvKeyHeader)),
		TitleTemplate:   getenv(EnvChangeTitle),
		CommentTemplate: getenv(EnvChangeComment),
		RolloutStatusID: strings.TrimSpace(getenv(EnvRolloutStatus)),
		PRURL:           strings.TrimSpace(getenv(EnvPRURL)),
	}
	for _, a := range strings.Split(getenv(EnvChangeApprovers), ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Approvers = append(cfg.Approvers, a)
		}
	}
	for _, e := range strings.Split(getenv(EnvApprovalEnvironments), ",") {
		if e = strings.TrimSpace(e); e != "" {
			cfg.ApprovalEnvironments = append(cfg.ApprovalEnvironments, e)
		}
	}
	// The mode alone is checked: which header auto chooses depends on the key.
	if _, err := keyHeaderOf(cfg.KeyHeader, ""); err != nil {
		return Config{}, fmt.Errorf("--split-key-header or %s: %w", EnvKeyHeader, err)
	}
	if _, err := newTemplates(cfg.TitleTemplate, cfg.CommentTemplate); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// keyFromEnv reads a key from name, or from the file name_FILE names.
func keyFromEnv(getenv func(string) string, name string) (string, error) {
	key := strings.TrimSpace(getenv(name))
	if key != "" {
		return key, nil
	}
	path := getenv(name + "_FILE")
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s_FILE: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}
