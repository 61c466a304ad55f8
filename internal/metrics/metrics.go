package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flagsync/flagsync/internal/buildinfo"
)

// Metrics holds every metric flagsync exports. Labels never carry secrets: only results,
// actions, endpoint templates, status codes, providers and outcomes.
type Metrics struct {
	Registry *prometheus.Registry

	Syncs            *prometheus.CounterVec   // result
	SyncDuration     *prometheus.HistogramVec // result
	LastSuccess      prometheus.Gauge         // unix seconds
	AppliedRevision  *prometheus.GaugeVec     // revision (1 for the current one)
	Changes          *prometheus.CounterVec   // stage (planned, applied, failed), action
	DriftDetected    prometheus.Counter       // drift checks that found live changes not made by flagsync
	APICalls         *prometheus.CounterVec   // endpoint, method, code
	APIBudget        *prometheus.GaugeVec     // window
	WebhookDelivered *prometheus.CounterVec   // provider, outcome
	ValidationFailed prometheus.Gauge         // 1 while the newest revision fails validation
	Suspended        prometheus.Gauge         // 1 while applying is suspended

	FetchedRevision   *prometheus.GaugeVec   // revision (1 for the newest fetched)
	AttemptedRevision *prometheus.GaugeVec   // revision (1 for the last a sync tried to apply)
	SyncRetryAttempt  prometheus.Gauge       // self-retries scheduled for the current failure streak
	SyncRetryNext     prometheus.Gauge       // unix seconds of the next self-retry; 0 when none
	SyncRetries       prometheus.Counter     // self-retries run
	LeaderRole        *prometheus.GaugeVec   // backend, role (1 for the current one)
	LeaderWriting     prometheus.Gauge       // 1 while this replica may write
	LeaderChanges     prometheus.Gauge       // times the observed leader changed
	AwaitingApproval  prometheus.Gauge       // changes waiting for approval in their service
	WebhookForwarded  *prometheus.CounterVec // outcome (forwarded, failed): deliveries a follower handed to the leader
	Notifications     *prometheus.CounterVec // sink, kind, outcome (sent, failed)
}

// New registers flagsync's metrics, plus flagsync_build_info and the Go and process
// collectors, on a new registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_syncs_total", Help: "Syncs run, by result (success, failed, invalid, skipped).",
		}, []string{"result"}),
		SyncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flagsync_sync_duration_seconds", Help: "Duration of syncs, by result.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"result"}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flagsync_last_success_timestamp_seconds", Help: "Unix time of the last successful sync.",
		}),
		AppliedRevision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flagsync_applied_revision_info", Help: "The Git revision last applied (value 1).",
		}, []string{"revision"}),
		Changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_changes_total", Help: "Plan changes by stage (planned, applied, failed) and action (create, update, archive).",
		}, []string{"stage", "action"}),
		DriftDetected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flagsync_drift_detected_total", Help: "Drift checks that found Kameleoon differing from an unchanged revision.",
		}),
		APICalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_api_calls_total", Help: "Kameleoon API calls by endpoint template, method and status code (0 for network errors).",
		}, []string{"endpoint", "method", "code"}),
		APIBudget: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flagsync_api_budget_remaining", Help: "API calls left in each rate-limit window.",
		}, []string{"window"}),
		WebhookDelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_webhook_deliveries_total", Help: "Webhook deliveries by provider and outcome.",
		}, []string{"provider", "outcome"}),
		ValidationFailed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flagsync_validation_failed", Help: "1 while the newest revision fails validation and the last good one stays applied.",
		}),
		Suspended: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flagsync_suspended", Help: "1 while applying is suspended (plans and drift reports go on).",
		}),
		FetchedRevision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flagsync_fetched_revision_info", Help: "The newest Git revision fetched (value 1).",
		}, []string{"revision"}),
		AttemptedRevision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flagsync_attempted_revision_info", Help: "The Git revision the last sync tried to apply, whatever came of it (value 1).",
		}, []string{"revision"}),
		SyncRetryAttempt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flagsync_sync_retry_attempt", Help: "Self-retries scheduled for the current streak of failed or unconverged syncs; 0 when none.",
		}),
		SyncRetryNext: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flagsync_sync_retry_next_timestamp_seconds", Help: "Unix time of the next self-retry of a failed sync; 0 when none is scheduled.",
		}),
		SyncRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flagsync_sync_retries_total", Help: "Self-retries of failed or unconverged syncs run.",
		}),
		LeaderRole: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flagsync_leader_role", Help: "This replica's part in the leader election (value 1 for the current role): leader, follower, or none (no election).",
		}, []string{"backend", "role"}),
		LeaderWriting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flagsync_leader_writing", Help: "1 while this replica may write to the flag services.",
		}),
		LeaderChanges: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flagsync_leader_changes", Help: "How many times this replica saw the leader change.",
		}),
		AwaitingApproval: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flagsync_changes_awaiting_approval", Help: "Changes filed for approval in their service (a Split change request) and not yet approved.",
		}),
		WebhookForwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_webhook_forwarded_total", Help: "Webhook deliveries a follower handed to the leader, by outcome (forwarded, failed).",
		}, []string{"outcome"}),
		Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flagsync_notifications_total", Help: "Notifications by sink, event kind and outcome (sent, failed).",
		}, []string{"sink", "kind", "outcome"}),
	}
	m.Registry.MustRegister(
		m.Syncs, m.SyncDuration, m.LastSuccess, m.AppliedRevision, m.Changes, m.DriftDetected,
		m.APICalls, m.APIBudget, m.WebhookDelivered, m.ValidationFailed, m.Suspended,
		buildinfo.Collector(),
		m.FetchedRevision, m.AttemptedRevision, m.SyncRetryAttempt, m.SyncRetryNext, m.SyncRetries,
		m.LeaderRole, m.LeaderWriting, m.LeaderChanges, m.AwaitingApproval, m.WebhookForwarded, m.Notifications,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// ObserveSync records one finished sync.
func (m *Metrics) ObserveSync(result string, d time.Duration) {
	m.Syncs.WithLabelValues(result).Inc()
	m.SyncDuration.WithLabelValues(result).Observe(d.Seconds())
	if result == "success" {
		m.LastSuccess.Set(float64(time.Now().Unix()))
	}
}

// SetRevision marks revision as the one fully applied (synced and converged),
// replacing the previous one.
func (m *Metrics) SetRevision(revision string) {
	m.AppliedRevision.Reset()
	m.AppliedRevision.WithLabelValues(revision).Set(1)
}

// SetFetchedRevision marks revision as the newest fetched.
func (m *Metrics) SetFetchedRevision(revision string) {
	m.FetchedRevision.Reset()
	m.FetchedRevision.WithLabelValues(revision).Set(1)
}

// SetAttemptedRevision marks revision as the one the last sync tried to apply.
func (m *Metrics) SetAttemptedRevision(revision string) {
	m.AttemptedRevision.Reset()
	m.AttemptedRevision.WithLabelValues(revision).Set(1)
}

// SetLeaderRole marks role (of backend) as this replica's, replacing the previous one.
func (m *Metrics) SetLeaderRole(backend, role string) {
	m.LeaderRole.Reset()
	m.LeaderRole.WithLabelValues(backend, role).Set(1)
}
