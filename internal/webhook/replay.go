package webhook

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Recommended settings for a daemon that faces the internet: a burst of 10 accepted
// deliveries per source, then one every 6 seconds.
const (
	DefaultRateLimit = rate.Limit(1.0 / 6)
	DefaultRateBurst = 10
)

// pushes remembers which pushes were accepted, by what their signature covers (the
// provider, repository, branch and the before and after revisions), and the revision
// each branch was last pushed to, so that a signed body re-sent with a fresh delivery
// id is recognised.
type pushes struct {
	mu    sync.Mutex
	max   int
	order *list.List               // of *seenPush, most recently seen first
	index map[string]*list.Element // key → element in order
	head  map[string]string        // branch key → the after of its last accepted push
	epoch uint64                   // counts the never-seen pushes accepted
}

// seenPush is a remembered push and the epoch it was last accepted in.
type seenPush struct {
	key   string
	epoch uint64
}

func newPushes(max int) *pushes {
	return &pushes{max: max, order: list.New(), index: map[string]*list.Element{}, head: map[string]string{}}
}

// pushKey identifies a push as its signed body does.
type pushKey struct {
	branch string // provider, repository and branch
	full   string // branch plus before and after
	before string
	after  string
}

func newPushKey(p Push) pushKey {
	branch := p.Provider + " " + p.Repository + " " + p.Branch
	return pushKey{branch: branch, full: branch + " " + p.Before + " " + p.After, before: p.Before, after: p.After}
}

// reserve decides whether a push is new and, if so, records it before any other
// request can. A push is a duplicate when it moves the branch to the revision the
// branch was last pushed to, or when it was seen before, unless it continues from the
// branch's last revision and a never-seen push was accepted since it was (the branch
// was reset and pushed forward again: rare, but real). So replays, even of two pushes
// in turn, get at most one acceptance per genuine push. The returned undo forgets a
// reservation that was not used.
func (p *pushes) reserve(k pushKey) (isNew bool, undo func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	head, known := p.head[k.branch]
	if known && head == k.after {
		return false, nil
	}
	var prevEpoch uint64
	e, seen := p.index[k.full]
	if seen {
		sp := e.Value.(*seenPush)
		p.order.MoveToFront(e)
		if !known || head != k.before || sp.epoch >= p.epoch {
			return false, nil
		}
		prevEpoch, sp.epoch = sp.epoch, p.epoch
	} else {
		p.epoch++
		e = p.order.PushFront(&seenPush{key: k.full, epoch: p.epoch})
		p.index[k.full] = e
		if p.order.Len() > p.max {
			oldest := p.order.Back()
			p.order.Remove(oldest)
			delete(p.index, oldest.Value.(*seenPush).key)
		}
	}
	if len(p.head) >= p.max { // bounded: verified senders name few branches
		clear(p.head)
	}
	p.head[k.branch] = k.after
	return true, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.head[k.branch] == k.after {
			if known {
				p.head[k.branch] = head
			} else {
				delete(p.head, k.branch)
			}
		}
		if cur, ok := p.index[k.full]; ok && cur == e {
			if seen {
				e.Value.(*seenPush).epoch = prevEpoch
			} else {
				if e.Value.(*seenPush).epoch == p.epoch {
					p.epoch--
				}
				p.order.Remove(e)
				delete(p.index, k.full)
			}
		}
	}
}

// limiter is a token bucket per source, for the sources seen most recently.
type limiter struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	max   int
	order *list.List               // of *sourceBucket, most recently used first
	index map[string]*list.Element // source → element
}

type sourceBucket struct {
	source string
	bucket *rate.Limiter
}

// maxSources bounds the buckets kept; the least recently used is dropped (a dropped
// source starts again with a full bucket, acceptable since only verified deliveries
// reach the limiter).
const maxSources = 4096

func newLimiter(limit rate.Limit, burst int) *limiter {
	return &limiter{limit: limit, burst: burst, max: maxSources, order: list.New(), index: map[string]*list.Element{}}
}

// allow takes a token from source's bucket at now. When there is none it reports how
// long until there is.
func (l *limiter) allow(source string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *rate.Limiter
	if e, ok := l.index[source]; ok {
		l.order.MoveToFront(e)
		b = e.Value.(*sourceBucket).bucket
	} else {
		b = rate.NewLimiter(l.limit, l.burst)
		l.index[source] = l.order.PushFront(&sourceBucket{source, b})
		if l.order.Len() > l.max {
			oldest := l.order.Back()
			l.order.Remove(oldest)
			delete(l.index, oldest.Value.(*sourceBucket).source)
		}
	}
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// retryAfterSeconds is a Retry-After value: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// remoteIP is the default source of a delivery: the peer's IP address. Behind a proxy
// every delivery has the proxy's address; give Options.Source then.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
