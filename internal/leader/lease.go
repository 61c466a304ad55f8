package leader

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// DefaultLeaseName is the Lease's name when LeaseConfig.Name is empty.
const DefaultLeaseName = "flagsync"

// LeaseConfig configures an election through a Kubernetes Lease.
type LeaseConfig struct {
	// Client talks to the API server. Default: built from the in-cluster config (the
	// pod's service account).
	Client kubernetes.Interface
	// Namespace holds the Lease. Default: the service account's namespace, read from
	// NamespaceFile.
	Namespace string
	// NamespaceFile is read when Namespace is empty. Default
	// ServiceAccountNamespaceFile.
	NamespaceFile string
	// Name is the Lease's name. Default DefaultLeaseName.
	Name string
	// Identity is this replica's identity. Default NewIdentity() (the pod name and a
	// random suffix).
	Identity string
	// Timings of the lease. Defaults 15s / 10s / 2s.
	Timings
	// NoEvents turns off the "became leader" / "stopped leading" Events recorded on the
	// Lease (which need RBAC to create and patch events).
	NoEvents bool
	// Logger receives the election's log lines, client-go's included. Default: discard.
	Logger *slog.Logger
	// Now is the clock that judges Writing and stamps renewals. Default time.Now.
	Now func() time.Time
}

// LeaseElector elects through a coordination.k8s.io/v1 Lease with client-go's
// leaderelection package, the one Kubernetes' own controllers use, with
// ReleaseOnCancel. On top of it, a renewal watchdog ends the term (cancelling its
// context and calling OnStoppedLeading) once RenewDeadline has passed since the last
// successful renewal, which is before any other replica may take the lease over
// (LeaseDuration after it last saw it change); a replica that lost its lease
// campaigns again.
type LeaseElector struct {
	*state
	client    kubernetes.Interface
	namespace string
	name      string
	timing    Timings
	events    bool
}

// NewLease checks cfg and returns a Lease Elector. It reads the namespace file and
// builds the in-cluster client when cfg leaves them out.
func NewLease(cfg LeaseConfig) (*LeaseElector, error) {
	t := cfg.Timings.withDefaults()
	if err := t.validate(); err != nil {
		return nil, err
	}
	ns := cfg.Namespace
	if ns == "" {
		file := cfg.NamespaceFile
		if file == "" {
			file = ServiceAccountNamespaceFile
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, &ConfigError{Field: "Namespace", Reason: fmt.Sprintf("not given, and the service account's namespace is unreadable: %v", err)}
		}
		if ns = strings.TrimSpace(string(b)); ns == "" {
			return nil, &ConfigError{Field: "Namespace", Reason: fmt.Sprintf("not given, and %s is empty", file)}
		}
	}
	name := cfg.Name
	if name == "" {
		name = DefaultLeaseName
	}
	client := cfg.Client
	if client == nil {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, &ConfigError{Field: "Client", Reason: fmt.Sprintf("in-cluster config: %v", err)}
		}
		rc.UserAgent = "flagsync-leader-election"
		// A request must not outlive the renew deadline it serves.
		rc.Timeout = t.RenewDeadline / 2
		if client, err = kubernetes.NewForConfig(rc); err != nil {
			return nil, &ConfigError{Field: "Client", Reason: err.Error()}
		}
	}
	id := cfg.Identity
	if id == "" {
		id = NewIdentity()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("lease", ns+"/"+name)
	return &LeaseElector{
		state:     newState(BackendLease, id, t.RenewDeadline, cfg.Now, log),
		client:    client,
		namespace: ns,
		name:      name,
		timing:    t,
		events:    !cfg.NoEvents,
	}, nil
}

// Run campaigns for the Lease until ctx is cancelled. On shutdown the term's context is
// cancelled, OnStartedLeading is waited for, and only then is the Lease released.
func (e *LeaseElector) Run(ctx context.Context, cb Callbacks) error {
	e.setCallbacks(cb)
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(e.log.Handler()))
	var recorder record.EventRecorder
	if e.events {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: e.client.CoreV1().Events(e.namespace)})
		defer b.Shutdown()
		host, _ := os.Hostname()
		recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "flagsync", Host: host})
	}
	for {
		if err := e.campaign(ctx, recorder); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(e.timing.RetryPeriod):
		}
	}
}

// campaign runs one client-go LeaderElector until it stops (the lease was lost) or
// ctx is cancelled.
func (e *LeaseElector) campaign(ctx context.Context, recorder record.EventRecorder) error {
	lock := &observedLock{
		Interface: &rl.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: e.namespace, Name: e.name},
			Client:     e.client.CoordinationV1(),
			LockConfig: rl.ResourceLockConfig{Identity: e.identity, EventRecorder: recorder},
		},
		identity: e.identity,
		timeout:  e.timing.RenewDeadline,
		now:      e.now,
		onRenew:  e.renewed,
	}
	// The elector runs on a context of its own, so that on shutdown the term is ended
	// (and its work waited for) before the elector releases the Lease.
	inner, cancelInner := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelInner()

	var (
		mu     sync.Mutex
		closed bool
		t      *term
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   e.timing.LeaseDuration,
		RenewDeadline:   e.timing.RenewDeadline,
		RetryPeriod:     e.timing.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            e.namespace + "/" + e.name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leCtx context.Context) {
				mu.Lock()
				if closed {
					mu.Unlock()
					return
				}
				t = e.startTerm(ctx, lock.lastRenewal())
				mine := t
				mu.Unlock()
				if mine == nil {
					return
				}
				go e.watchdog(mine, cancelInner)
				select {
				case <-leCtx.Done(): // client-go gave up renewing
					e.endTerm(mine, "lease lost: renewal failed", false)
				case <-mine.ended:
				}
			},
			OnStoppedLeading: func() {}, // the term is ended above, as early as client-go tells
			OnNewLeader:      e.observe,
		},
	})
	if err != nil {
		return &ConfigError{Field: "Timings", Reason: err.Error()}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		le.Run(inner)
	}()

	select {
	case <-ctx.Done():
		mu.Lock()
		closed = true
		mine := t
		mu.Unlock()
		if mine != nil {
			e.endTerm(mine, "shutting down", true)
			e.waitTerm(mine)
		}
		cancelInner() // now the elector releases the Lease
		<-done
	case <-done:
		mu.Lock()
		closed = true
		mine := t
		mu.Unlock()
		if mine != nil {
			e.endTerm(mine, "lease lost", false)
			// Campaign again only once the lost term's work has stopped.
			e.waitTerm(mine)
		}
	}
	return nil
}

// observedLock is the Lease lock that records, by the clock, when this replica last
// created or renewed it: the start of the successful request, so the guard errs on
// the side of stopping early.
//
// It also bounds every request by the renew deadline. client-go bounds renewals and
// the release by it, but not the attempts to acquire: with a client that has no
// request timeout of its own, one request that never returns (an API server that
// went away without closing the connection) would stall the campaign for good. A
// replica that lost its lease, campaigning again, reads the Lease still naming it
// (until another replica takes it over) and tries to renew it: that attempt must
// give up so that the next one sees the new leader.
type observedLock struct {
	rl.Interface
	identity string
	timeout  time.Duration // of each request
	now      func() time.Time
	onRenew  func(time.Time)
	last     atomic.Int64 // UnixNano of the last successful acquire or renewal
}

// Get reads the Lease.
func (l *observedLock) Get(ctx context.Context) (*rl.LeaderElectionRecord, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	return l.Interface.Get(ctx)
}

// Create creates the Lease and records an acquisition.
func (l *observedLock) Create(ctx context.Context, ler rl.LeaderElectionRecord) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	start := l.now()
	if err := l.Interface.Create(ctx, ler); err != nil {
		return err
	}
	l.record(ler, start)
	return nil
}

// Update updates the Lease and records a renewal.
func (l *observedLock) Update(ctx context.Context, ler rl.LeaderElectionRecord) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	start := l.now()
	if err := l.Interface.Update(ctx, ler); err != nil {
		return err
	}
	l.record(ler, start)
	return nil
}

func (l *observedLock) record(ler rl.LeaderElectionRecord, at time.Time) {
	if ler.HolderIdentity != l.identity {
		return // a release
	}
	l.last.Store(at.UnixNano())
	l.onRenew(at)
}

func (l *observedLock) lastRenewal() time.Time { return time.Unix(0, l.last.Load()) }
