package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/leader"
)

// errNotLeader is the cause of a sync's context when this replica's term ended under
// it: the flags not yet started are left to the new leader.
var errNotLeader = errors.New("this replica stopped leading during the sync: flags not yet started were left to the new leader")

// defaultForwardTimeout bounds a follower's wait for the leader's answer to a webhook
// delivery it handed on.
const defaultForwardTimeout = 5 * time.Second

// HeaderForwardedBy marks a webhook delivery a follower handed to the leader, with the
// follower's identity. A delivery that carries it is never handed on again, so a
// delivery cannot travel in circles while leadership moves. It is not trusted for
// anything else: the leader verifies the delivery's signature as it would the Git
// host's own request.
const HeaderForwardedBy = "X-Flagsync-Forwarded-By"

// Identity returns a replica identity for the leader election that also tells the
// other replicas where this replica's webhook endpoint is ("name@url"), so that a
// follower can hand it the deliveries it receives. Without an advertised URL the
// identity is name alone, and a follower answers deliveries itself: the leader then
// picks the push up on its next scheduled sync or drift check.
func Identity(name, advertise string) string {
	if advertise == "" {
		return name
	}
	return name + "@" + strings.TrimRight(advertise, "/")
}

// advertised returns the webhook URL an identity carries, or "".
func advertised(identity string) string {
	_, u, ok := strings.Cut(identity, "@")
	if !ok {
		return ""
	}
	if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	return u
}

// startElection takes part in the election on a goroutine of its own, unless this is
// a lone replica. The returned function leaves the election, releasing the lease or
// lock once the sync in flight stopped, and waits for that. An election that cannot
// run at all is reported on fail.
func (d *Daemon) startElection(ctx context.Context, fail chan<- error) (leave func()) {
	if !d.elected {
		return func() {}
	}
	// Not ctx: the lock is held until the loop has stopped writing, after ctx ended.
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	st := d.elector.Status()
	d.log.Info("leader election: following until elected", "backend", string(st.Backend), "identity", st.Identity)
	go func() {
		defer close(done)
		err := d.elector.Run(ectx, leader.Callbacks{OnStartedLeading: d.lead, OnNewLeader: d.newLeader})
		if err != nil && ectx.Err() == nil {
			fail <- err
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// lead is one term of leadership: it asks for a full sync (what the last leader left
// is not known here) and, when the term ends, stops the sync in flight from starting
// more flags and returns once it ended; the election releases the lease only then.
// Writes already on their way are stopped by the election's guard.
func (d *Daemon) lead(ctx context.Context) {
	d.mu.Lock()
	d.term = ctx
	d.mu.Unlock()
	d.refreshGauges()
	d.log.Info("leading: this replica syncs and writes", "identity", d.elector.Identity())
	d.request("elected", true, nil)
	<-ctx.Done()

	d.mu.Lock()
	d.term = nil
	if d.stopRun != nil {
		d.stopRun(errNotLeader)
	}
	for d.running != nil {
		d.cycled.Wait()
	}
	d.mu.Unlock()
	d.refreshGauges()
	d.log.Info("stopped leading: following", "identity", d.elector.Identity())
}

// newLeader records a change of the observed leader.
func (d *Daemon) newLeader(identity string) {
	d.refreshGauges()
	if identity != "" && identity != d.elector.Identity() {
		d.log.Info("the leader is another replica", "leader", identity, "forward_to", advertised(identity))
	}
}

// handOn sends a webhook delivery a follower received to the leader, as it came, and
// copies the leader's answer back; it reports false, with r's body still readable,
// when there is no leader to hand it to or the leader did not answer, so that the
// follower answers it itself.
func (d *Daemon) handOn(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get(HeaderForwardedBy) != "" {
		return false
	}
	d.mu.Lock()
	following := d.elected && d.term == nil
	d.mu.Unlock()
	leaderID := d.elector.Leader()
	target := advertised(leaderID)
	if !following || target == "" || leaderID == d.elector.Identity() {
		return false
	}
	limit := d.cfg.WebhookMaxBody
	if limit <= 0 {
		limit = 1 << 20
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
	if err != nil || int64(len(body)) > limit {
		return false // the follower's own handler answers (413, or 400)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		return false
	}
	for k, v := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Host":
		default:
			req.Header[k] = v
		}
	}
	req.Header.Set(HeaderForwardedBy, d.elector.Identity())
	resp, err := d.forward.Do(req)
	if err != nil {
		d.m.WebhookForwarded.WithLabelValues("failed").Inc()
		d.log.Warn("could not hand the webhook delivery to the leader; answering it here (the leader's next scheduled sync or drift check picks the push up)", "leader", leaderID, "error", err.Error())
		return false
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode >= 500 {
		d.m.WebhookForwarded.WithLabelValues("failed").Inc()
		d.log.Warn("the leader did not take the webhook delivery; answering it here", "leader", leaderID, "status", resp.StatusCode)
		return false
	}
	d.m.WebhookForwarded.WithLabelValues("forwarded").Inc()
	d.log.Info("webhook delivery handed to the leader", "leader", leaderID, "status", resp.StatusCode)
	for _, k := range []string{"Content-Type", "Retry-After", "X-Content-Type-Options"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
	return true
}
