package daemon

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/metrics"
)

// maxReason bounds the reason a suspend request may give.
const maxReason = 200

// Handler returns every endpoint of the daemon on one mux: MainHandler's and
// AdminHandler's, for a daemon with a single listener.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	d.mainRoutes(mux)
	d.adminRoutes(mux)
	return mux
}

// MainHandler returns the endpoints the Git host and the orchestrator reach:
//
//	GET  /healthz          200 while the process runs
//	GET  /readyz           200 when ready, else 503 (see Status.ReadyWhy)
//	POST /webhook          Git host webhooks (404 without a webhook secret)
//	POST /webhook/{provider}
func (d *Daemon) MainHandler() http.Handler {
	mux := http.NewServeMux()
	d.mainRoutes(mux)
	return mux
}

// AdminHandler returns the endpoints for operators and monitoring, on an address of
// their own (--admin-listen) so that only the webhook faces the Git host:
//
//	GET  /metrics          Prometheus metrics
//	GET  /status           Status as JSON
//	POST /suspend          suspend applying (bearer admin token; 404 without one)
//	POST /resume           resume applying and sync at once
func (d *Daemon) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	d.adminRoutes(mux)
	return mux
}

func (d *Daemon) mainRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, why := d.readiness(time.Now())
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"ready": ready, "reason": why})
	})
	mux.HandleFunc("/webhook", d.serveWebhook)
	mux.HandleFunc("/webhook/{provider}", d.serveWebhook)
}

func (d *Daemon) adminRoutes(mux *http.ServeMux) {
	metricsHandler := d.m.Handler()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		d.refreshGauges()
		metricsHandler.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.Status())
	})
	mux.HandleFunc("POST /suspend", d.adminOnly(d.serveSuspend))
	mux.HandleFunc("POST /resume", d.adminOnly(d.serveResume))
}

// serveWebhook answers a webhook delivery: a follower hands it to the leader when it
// knows where the leader is, and otherwise answers it itself (a push is then picked
// up by the leader's next scheduled sync or drift check).
func (d *Daemon) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if len(d.cfg.WebhookSecret) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "webhooks are off: set FLAGSYNC_WEBHOOK_SECRET (or FLAGSYNC_WEBHOOK_SECRET_FILE) to turn them on"})
		return
	}
	if r.Method == http.MethodPost && d.handOn(w, r) {
		return
	}
	h := d.hook.Load()
	if h == nil {
		w.Header().Set("Retry-After", "10")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"outcome": "unavailable", "reason": "the tracked branch is not known yet: the repository has not been fetched (give --ref BRANCH or --webhook-branch to know it at start)"})
		return
	}
	h.ServeHTTP(w, r)
}

// adminOnly lets through requests that carry the admin token as a bearer token,
// compared in constant time (as hashes, so the length does not leak either).
func (d *Daemon) adminOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !d.hasTok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "admin endpoints are off: set FLAGSYNC_ADMIN_TOKEN (or FLAGSYNC_ADMIN_TOKEN_FILE) to turn them on"})
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !ok || subtle.ConstantTimeCompare(sum[:], d.admin[:]) != 1 {
			d.log.Warn("admin request refused: missing or wrong bearer token", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="flagsync"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
			return
		}
		next(w, r)
	}
}

func (d *Daemon) serveSuspend(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	reason := clipReason(r.FormValue("reason"))
	d.Suspend("api", reason)
	d.log.Warn("applying suspended through the admin endpoint", "remote", r.RemoteAddr, "reason", reason)
	writeJSON(w, http.StatusOK, map[string]any{"suspended": true, "reason": reason})
}

func (d *Daemon) serveResume(w http.ResponseWriter, r *http.Request) {
	d.Resume()
	d.log.Warn("applying resumed through the admin endpoint", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"suspended": false})
}

// Suspend pauses applying: syncs go on planning and reporting drift but send no write.
// A sync in flight starts no further flag (the flags it started finish their changes).
// by says who suspended ("api", "flag"), reason why.
func (d *Daemon) Suspend(by, reason string) {
	d.mu.Lock()
	if !d.susp.on {
		d.susp = suspension{on: true, since: time.Now(), by: by, reason: reason}
	}
	stop := d.stopRun
	d.mu.Unlock()
	d.m.Suspended.Set(1)
	if stop != nil {
		stop(errSuspended)
	}
}

// Resume ends a suspension and asks for a full sync at once.
func (d *Daemon) Resume() {
	d.mu.Lock()
	was := d.susp.on
	d.susp = suspension{}
	d.mu.Unlock()
	d.m.Suspended.Set(0)
	if was {
		d.RequestSync("resume")
	}
}

// APIObserver returns a vendor client's Observer that counts every HTTP exchange with
// the API into calls (for Config.Calls) and into m's flagsync_api_calls_total.
func APIObserver(m *metrics.Metrics, calls *atomic.Int64) func(api.CallInfo) {
	return func(ci api.CallInfo) {
		calls.Add(1)
		m.APICalls.WithLabelValues(ci.Endpoint, ci.Method, strconv.Itoa(ci.Status)).Inc()
	}
}

func clipReason(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxReason {
		return s
	}
	s = s[:maxReason]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
