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
	}
	m.Registry.MustRegister(
		m.Syncs, m.SyncDuration, m.LastSuccess, m.AppliedRevision, m.Changes, m.DriftDetected,
		m.APICalls, m.APIBudget, m.WebhookDelivered, m.ValidationFailed, m.Suspended,
		buildinfo.Collector(),
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

// SetRevision marks revision as the one applied, replacing the previous one.
func (m *Metrics) SetRevision(revision string) {
	m.AppliedRevision.Reset()
	m.AppliedRevision.WithLabelValues(revision).Set(1)
}
