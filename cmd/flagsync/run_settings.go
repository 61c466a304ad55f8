package main

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/flagsync/flagsync/internal/buildinfo"
	"github.com/flagsync/flagsync/internal/daemon"
	"github.com/flagsync/flagsync/internal/metrics"
	"github.com/flagsync/flagsync/internal/notify"
	"github.com/flagsync/flagsync/internal/provider"
)

// placeholderSecrets are values that name no secret but the need for one, lower-case.
// The Helm chart refuses the same list in secret.values (flagsync.secretFiles in
// deploy/helm/flagsync/templates/_helpers.tpl); a test keeps the two lists equal.
var placeholderSecrets = []string{"replace-me", "replaceme", "changeme", "change-me", "placeholder", "todo", "xxx", "example"}

// SecretError is a daemon secret that is set but cannot be used: empty, or a
// placeholder. It names the setting, never the value.
type SecretError struct {
	Setting string // FLAGSYNC_ADMIN_TOKEN, FLAGSYNC_ADMIN_TOKEN_FILE, --webhook-secret, …
	Reason  string
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("%s: %s; set a random value (openssl rand -hex 32 makes one), or unset it to turn the feature off", e.Setting, e.Reason)
}

// checkSecret refuses an empty (when set) or placeholder secret.
func checkSecret(setting, value string, set bool) error {
	v := strings.ToLower(strings.TrimSpace(value))
	switch {
	case set && v == "":
		return &SecretError{Setting: setting, Reason: "empty"}
	case v != "" && slices.Contains(placeholderSecrets, v):
		return &SecretError{Setting: setting, Reason: "a placeholder, not a secret"}
	}
	return nil
}

// daemonSecret reads one of the daemon's secrets from NAME, or from the file NAME_FILE
// names, and refuses it when it is set but empty (a blank variable, an empty file) or a
// placeholder. Unset, it is "": the feature it turns on stays off.
func (a *app) daemonSecret(name string) (string, error) {
	if v := a.getenv(name); v != "" {
		return v, checkSecret(name, v, true)
	}
	path := a.getenv(name + "_FILE")
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s_FILE: %w", name, err)
	}
	v := strings.TrimSpace(string(b))
	return v, checkSecret(name+"_FILE", v, true)
}

// notifier builds the notification sinks the settings configure, or nil for none: a
// Standard Webhooks receiver (FLAGSYNC_NOTIFY_WEBHOOK_URL and _SECRET) and a Slack
// incoming webhook (FLAGSYNC_NOTIFY_SLACK_URL), each with the events it takes.
func (a *app) notifier(f runFlags, m *metrics.Metrics, logger *slog.Logger) (*notify.Notifier, error) {
	var sinks []notify.Sink
	hookURL, err := a.daemonSecret("FLAGSYNC_NOTIFY_WEBHOOK_URL")
	if err != nil {
		return nil, err
	}
	hookSecret, err := a.daemonSecret("FLAGSYNC_NOTIFY_WEBHOOK_SECRET")
	if err != nil {
		return nil, err
	}
	slackURL, err := a.daemonSecret("FLAGSYNC_NOTIFY_SLACK_URL")
	if err != nil {
		return nil, err
	}
	switch {
	case hookURL != "" && hookSecret == "":
		return nil, provider.Usagef("FLAGSYNC_NOTIFY_WEBHOOK_URL needs FLAGSYNC_NOTIFY_WEBHOOK_SECRET (or _FILE): \"whsec_\" and the base64 of 32 random bytes")
	case hookURL == "" && hookSecret != "":
		return nil, provider.Usagef("FLAGSYNC_NOTIFY_WEBHOOK_SECRET is set without FLAGSYNC_NOTIFY_WEBHOOK_URL")
	case hookURL == "" && f.notifyWebhookEvents != "":
		return nil, provider.Usagef("--notify-webhook-events needs FLAGSYNC_NOTIFY_WEBHOOK_URL")
	case slackURL == "" && f.notifySlackEvents != "":
		return nil, provider.Usagef("--notify-slack-events needs FLAGSYNC_NOTIFY_SLACK_URL")
	}
	if hookURL != "" {
		sinks = append(sinks, &notify.Webhook{Name: "webhook", URL: notify.Secret(hookURL), Secret: notify.Secret(hookSecret), Events: events(f.notifyWebhookEvents)})
	}
	if slackURL != "" {
		sinks = append(sinks, &notify.Slack{Name: "slack", URL: notify.Secret(slackURL), Events: events(f.notifySlackEvents)})
	}
	if len(sinks) == 0 {
		if f.planURL != "" {
			logger.Warn("--plan-url is set but no notification is: set FLAGSYNC_NOTIFY_WEBHOOK_URL or FLAGSYNC_NOTIFY_SLACK_URL")
		}
		return nil, nil
	}
	n, err := notify.New(notify.Config{
		Sinks: sinks, PlanURL: f.planURL, Logger: logger,
		Observe: func(sink string, kind notify.Kind, delivered bool) {
			outcome := "failed"
			if delivered {
				outcome = "sent"
			}
			m.Notifications.WithLabelValues(sink, string(kind), outcome).Inc()
		},
	})
	if err != nil {
		return nil, provider.Usagef("notifications: %v", err)
	}
	for _, s := range sinks {
		logger.Info("notifications on", "sink", s)
	}
	return n, nil
}

// events parses a comma-separated list of event kinds; notify.New checks them.
func events(list string) notify.Events {
	var out notify.Events
	for _, k := range provider.SplitList(list) {
		out = append(out, notify.Kind(k))
	}
	return out
}

// notifyScope names what a daemon's notifications are about: its services and flag
// folder, e.g. "kameleoon/flags".
func notifyScope(conns *provider.Connections, dir string) string {
	var names []string
	for _, c := range conns.List {
		names = append(names, strings.ToLower(c.Service))
	}
	scope := strings.Join(names, "+")
	if dir != "." && dir != "" {
		scope += "/" + dir
	}
	return scope
}

// buildInfo says which binary runs, for /status and the daemon's log.
func buildInfo() daemon.BuildInfo {
	b := buildinfo.Get()
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	}
	return daemon.BuildInfo{Version: b.Version, Commit: commit, GoVersion: b.GoVersion}
}
