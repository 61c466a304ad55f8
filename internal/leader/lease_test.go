package leader

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flagsync/flagsync/internal/logtest"
)

// Test timings: whole seconds for the lease (the Lease stores seconds), short enough
// for a test; the takeover after a lost lease takes about LeaseDuration.
var testLeaseTimings = Timings{LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 250 * time.Millisecond}

var leasesGVR = coordinationv1.SchemeGroupVersion.WithResource("leases")

// cluster is a fake clientset whose Lease updates behave like the API server's:
// optimistic concurrency on resourceVersion (the plain fake tracker has none). Every
// change of holder is checked: at the moment another replica's acquisition is
// committed, the previous holder must already have stopped writing and have had its
// term's context cancelled.
type cluster struct {
	t      *testing.T
	client *fake.Clientset
	rv     int // guarded by the fake's own lock: reactors run one at a time

	mu        sync.Mutex
	electors  map[string]*LeaseElector
	termCtx   map[string]context.Context // the current term's context per identity
	hang      map[string]*atomic.Bool    // per identity: its Lease updates hang
	takeovers int                        // acquisitions checked

	hanging atomic.Int32 // Lease updates hanging now, of every replica
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, client: fake.NewClientset(), electors: map[string]*LeaseElector{}, termCtx: map[string]context.Context{}, hang: map[string]*atomic.Bool{}}
	tracker := c.client.Tracker()
	c.client.PrependReactor("create", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		lease := a.(k8stesting.CreateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
		c.rv++
		lease.ResourceVersion = strconv.Itoa(c.rv)
		if err := tracker.Create(leasesGVR, lease, lease.Namespace); err != nil {
			return true, nil, err
		}
		c.checkTakeover("", holder(lease))
		return true, lease, nil
	})
	c.client.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		lease := a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
		obj, err := tracker.Get(leasesGVR, lease.Namespace, lease.Name)
		if err != nil {
			return true, nil, err
		}
		cur := obj.(*coordinationv1.Lease)
		if cur.ResourceVersion != lease.ResourceVersion {
			return true, nil, apierrors.NewConflict(leasesGVR.GroupResource(), lease.Name, errors.New("the object has been modified"))
		}
		c.rv++
		lease.ResourceVersion = strconv.Itoa(c.rv)
		if err := tracker.Update(leasesGVR, lease, lease.Namespace); err != nil {
			return true, nil, err
		}
		c.checkTakeover(holder(cur), holder(lease))
		return true, lease, nil
	})
	return c
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// checkTakeover runs when a Lease write is committed: when a replica acquires it, no
// other replica may still be writing.
func (c *cluster) checkTakeover(from, to string) {
	if to == "" || to == from {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.takeovers++
	for id, e := range c.electors {
		if id == to {
			continue
		}
		if e.Writing() {
			c.t.Errorf("%s acquired the lease while %s was still writing", to, id)
		}
		if ctx := c.termCtx[id]; ctx != nil && ctx.Err() == nil {
			c.t.Errorf("%s acquired the lease while %s's term context was not cancelled", to, id)
		}
	}
}

// hangUpdatesOf makes id's Lease updates hang until their context ends, as they do
// when the API server cannot be reached: client-go then gives up renewing only after
// RenewDeadline, and its release attempt hangs for another RenewDeadline before the
// leader's context is cancelled; only the renewal watchdog stops the writes in time.
func (c *cluster) hangUpdatesOf(id string) {
	c.hangFlag(id).Store(true)
}

// hangFlag returns the switch that makes id's Lease updates hang.
func (c *cluster) hangFlag(id string) *atomic.Bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hang[id] == nil {
		c.hang[id] = &atomic.Bool{}
	}
	return c.hang[id]
}

// hangingClient is the fake clientset as one replica sees it: its Lease updates can
// be made to hang.
type hangingClient struct {
	*fake.Clientset
	hang    *atomic.Bool
	hanging *atomic.Int32 // counts the updates hanging now
}

func (h hangingClient) CoordinationV1() coordinationv1client.CoordinationV1Interface {
	return hangingCoordination{h.Clientset.CoordinationV1(), h.hang, h.hanging}
}

type hangingCoordination struct {
	coordinationv1client.CoordinationV1Interface
	hang    *atomic.Bool
	hanging *atomic.Int32
}

func (h hangingCoordination) Leases(ns string) coordinationv1client.LeaseInterface {
	return hangingLeases{h.CoordinationV1Interface.Leases(ns), h.hang, h.hanging}
}

type hangingLeases struct {
	coordinationv1client.LeaseInterface
	hang    *atomic.Bool
	hanging *atomic.Int32
}

func (h hangingLeases) Update(ctx context.Context, l *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if h.hang.Load() {
		h.hanging.Add(1)
		defer h.hanging.Add(-1)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.LeaseInterface.Update(ctx, l, opts)
}

// replica is one elector running against the cluster, with what its callbacks saw.
type replica struct {
	e       *LeaseElector
	cancel  context.CancelFunc
	done    chan error
	started atomic.Int32
	stopped atomic.Int32
	leading chan string // receives the identity on each OnStartedLeading
}

func (c *cluster) start(t *testing.T, id string, leading chan string) *replica {
	t.Helper()
	logs := &logtest.Buffer{}
	e, err := NewLease(LeaseConfig{
		Client: hangingClient{c.client, c.hangFlag(id), &c.hanging}, Namespace: "flags", Name: "flagsync", Identity: id,
		Timings: testLeaseTimings, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.electors[id] = e
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{e: e, cancel: cancel, done: make(chan error, 1), leading: leading}
	go func() {
		r.done <- e.Run(ctx, Callbacks{
			OnStartedLeading: func(ctx context.Context) {
				c.mu.Lock()
				c.termCtx[id] = ctx
				c.mu.Unlock()
				r.started.Add(1)
				leading <- id
				<-ctx.Done()
			},
			OnStoppedLeading: func() { r.stopped.Add(1) },
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s: Run did not return after cancel", id)
		}
	})
	return r
}

func waitLeader(t *testing.T, leading chan string, what string) string {
	t.Helper()
	select {
	case id := <-leading:
		return id
	case <-time.After(20 * time.Second):
		t.Fatalf("no replica became leader: %s", what)
	}
	return ""
}

// exactlyOne checks, over a few retry periods, that one replica leads and writes and
// the other follows and knows who leads.
func exactlyOne(t *testing.T, lead, follow *replica) {
	t.Helper()
	deadline := time.Now().Add(4 * testLeaseTimings.RetryPeriod)
	for time.Now().Before(deadline) {
		if !lead.e.IsLeader() || follow.e.IsLeader() || follow.e.Writing() {
			t.Fatalf("leader %s: IsLeader %t; follower %s: IsLeader %t Writing %t",
				lead.e.Identity(), lead.e.IsLeader(), follow.e.Identity(), follow.e.IsLeader(), follow.e.Writing())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := follow.e.Leader(); got != lead.e.Identity() {
		t.Errorf("follower sees leader %q, want %q", got, lead.e.Identity())
	}
	if st := follow.e.Status(); st.Role != RoleFollower || st.Backend != BackendLease {
		t.Errorf("follower status %+v", st)
	}
	if st := lead.e.Status(); st.Role != RoleLeader || !st.Writing || st.Leader != lead.e.Identity() {
		t.Errorf("leader status %+v", st)
	}
}

// TestLeaseOneLeaderThenHandover: of two electors on one cluster exactly one leads;
// cancelling it releases the Lease (ReleaseOnCancel) and the other takes over.
func TestLeaseOneLeaderThenHandover(t *testing.T) {
	c := newCluster(t)
	leading := make(chan string, 4)
	reps := map[string]*replica{"pod-a_1": c.start(t, "pod-a_1", leading), "pod-b_2": c.start(t, "pod-b_2", leading)}
	first := waitLeader(t, leading, "at start")
	lead, follow := reps[first], reps[other(first)]
	exactlyOne(t, lead, follow)

	lead.cancel()
	if err := <-lead.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	lead.done <- nil // for the cleanup
	if lead.stopped.Load() != 1 || lead.e.IsLeader() || lead.e.Writing() {
		t.Errorf("cancelled leader: stopped %d, IsLeader %t, Writing %t", lead.stopped.Load(), lead.e.IsLeader(), lead.e.Writing())
	}
	if got := waitLeader(t, leading, "after the leader was cancelled"); got != follow.e.Identity() {
		t.Fatalf("new leader %s, want %s", got, follow.e.Identity())
	}
	if !follow.e.Writing() {
		t.Error("the new leader is not writing")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.takeovers < 2 {
		t.Errorf("%d acquisitions checked, want 2", c.takeovers)
	}
}

// TestLeaseLostStopsWritingFirst: the leader's renewals start hanging. It must stop
// writing, have its term's context cancelled and OnStoppedLeading called before the
// other replica can acquire the Lease (checked when that acquisition is committed),
// and then campaign again as a follower.
func TestLeaseLostStopsWritingFirst(t *testing.T) {
	c := newCluster(t)
	leading := make(chan string, 4)
	reps := map[string]*replica{"pod-a_1": c.start(t, "pod-a_1", leading), "pod-b_2": c.start(t, "pod-b_2", leading)}
	first := waitLeader(t, leading, "at start")
	lead, follow := reps[first], reps[other(first)]
	exactlyOne(t, lead, follow)

	c.hangUpdatesOf(first)
	if got := waitLeader(t, leading, "after the leader lost its lease"); got != follow.e.Identity() {
		t.Fatalf("new leader %s, want %s", got, follow.e.Identity())
	}
	if lead.stopped.Load() != 1 {
		t.Errorf("OnStoppedLeading called %d times on the replica that lost its lease, want 1", lead.stopped.Load())
	}
	if lead.e.Writing() || lead.e.IsLeader() {
		t.Error("the replica that lost its lease still leads")
	}
	var nl *NotLeaderError
	if err := lead.e.Guard(context.Background()); !errors.As(err, &nl) {
		t.Errorf("Guard on the old leader: %v, want NotLeaderError", err)
	}
	c.mu.Lock()
	takeovers := c.takeovers
	c.mu.Unlock()
	if takeovers < 2 {
		t.Errorf("%d acquisitions checked, want 2", takeovers)
	}
	// The old leader campaigns again: it follows the new one.
	deadline := time.Now().Add(10 * time.Second)
	for lead.e.Leader() != follow.e.Identity() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := lead.e.Leader(); got != follow.e.Identity() {
		t.Errorf("the old leader sees %q as leader, want %q", got, follow.e.Identity())
	}
	if st := lead.e.Status(); st.Role != RoleFollower || st.Transitions != 2 {
		t.Errorf("old leader status %+v, want follower after 2 transitions", st)
	}
}

// TestLeaseAttemptToAcquireGivesUp: a replica campaigning while its Lease updates hang
// reads the Lease still naming it (as one that just lost its lease does, until another
// replica takes it over) and tries to renew it. client-go does not bound that attempt
// and this client has no request timeout, so the elector must: once another replica
// holds the Lease, the next attempt sees it as the leader.
func TestLeaseAttemptToAcquireGivesUp(t *testing.T) {
	c := newCluster(t)
	leases := c.client.CoordinationV1().Leases("flags")
	a, b := "pod-a_1", "pod-b_2"
	now := metav1.NewMicroTime(time.Now())
	secs := int32(testLeaseTimings.LeaseDuration / time.Second)
	_, err := leases.Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flags", Name: "flagsync"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &a, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.hangUpdatesOf(a)
	rep := c.start(t, a, make(chan string, 1))
	deadline := time.Now().Add(10 * time.Second)
	for c.hanging.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the replica never tried to renew the Lease that names it")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Another replica takes the Lease over while that attempt hangs.
	cur, err := leases.Get(context.Background(), "flagsync", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec.HolderIdentity = &b
	if _, err := leases.Update(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for rep.e.Leader() != b && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := rep.e.Leader(); got != b {
		t.Errorf("the replica sees %q as leader, want %q (its attempt to renew is still hanging: %d)", got, b, c.hanging.Load())
	}
	if rep.started.Load() != 0 || rep.e.IsLeader() {
		t.Errorf("the replica led (started %d, IsLeader %t) though its updates never went through", rep.started.Load(), rep.e.IsLeader())
	}
}

func other(id string) string {
	if id == "pod-a_1" {
		return "pod-b_2"
	}
	return "pod-a_1"
}

func TestLeaseConfig(t *testing.T) {
	c := newCluster(t)
	_, err := NewLease(LeaseConfig{Client: c.client, Namespace: "x", Timings: Timings{LeaseDuration: 1500 * time.Millisecond}})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "LeaseDuration" {
		t.Errorf("sub-second lease duration: %v", err)
	}
	e, err := NewLease(LeaseConfig{Client: c.client, Namespace: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if e.timing != (Timings{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}) || e.name != DefaultLeaseName {
		t.Errorf("defaults: %+v %q", e.timing, e.name)
	}
	if e.Identity() == "" {
		t.Error("no identity generated")
	}
}
