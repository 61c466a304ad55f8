package provider_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/provider/providertest/fake"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// renamed is a provider under another name, service and flag names.
type renamed struct {
	provider.Provider
	name, service, flag string
}

func (r renamed) Name() string { return r.name }
func (r renamed) Help() provider.Help {
	h := r.Provider.Help()
	h.Service = r.service
	return h
}
func (r renamed) Flags() []provider.Flag {
	return []provider.Flag{{Name: r.flag, Default: 1, Usage: "a flag"}}
}

func panics(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = r.(string)
		}
	}()
	f()
	return ""
}

func TestRegisterRefusesClashes(t *testing.T) {
	reg := provider.NewRegistry()
	reg.Register(fake.Provider(fake.NewServer()))
	for _, tc := range []struct {
		p    provider.Provider
		want string
	}{
		{renamed{fake.Provider(nil), "fake", "Other", "x"}, "registered twice"},
		{renamed{fake.Provider(nil), "other", "Fake", "x"}, "registered twice"},
		{renamed{fake.Provider(nil), "other", "Other", "fake-calls-per-hour"}, "is fake's"},
	} {
		if got := panics(func() { reg.Register(tc.p) }); !strings.Contains(got, tc.want) {
			t.Errorf("register %s: panic %q, want %q", tc.p.Name(), got, tc.want)
		}
	}
	if got := reg.Names(); len(got) != 1 {
		t.Errorf("names after refused registrations: %v", got)
	}
}

func TestDefaultAndLookup(t *testing.T) {
	reg := provider.NewRegistry()
	if reg.Default() != nil {
		t.Error("an empty registry has a default")
	}
	reg.Register(fake.Provider(fake.NewServer()))
	reg.Register(renamed{fake.Provider(nil), "other", "Other", "other-flag"})
	if reg.Default().Name() != "fake" {
		t.Errorf("default %s: want the first registered when none takes unclaimed files", reg.Default().Name())
	}
	if p, ok := reg.Lookup("other"); !ok || p.Help().Service != "Other" {
		t.Errorf("lookup other: %v %v", p, ok)
	}
	if p, ok := reg.Service("Other"); !ok || p.Name() != "other" {
		t.Errorf("service Other: %v %v", p, ok)
	}
	if got := len(reg.Flags()); got != 2 {
		t.Errorf("%d connection flags, want every provider's", got)
	}
}

// TestConnectWhatTheRepositoryNeeds: the registry connects the services a load found,
// each through its provider, and nothing else.
func TestConnectWhatTheRepositoryNeeds(t *testing.T) {
	svc := fake.NewServer()
	reg := provider.NewRegistry()
	reg.Register(fake.Provider(svc))
	fsys := fstest.MapFS{"flags/a.yaml": {Data: []byte("vendor: fake\nkey: a\nenabled: true\n")}}
	l, err := reconcile.Load(reg.FileVendors(), reconcile.Source{FS: fsys, Dir: "flags"})
	if err != nil {
		t.Fatal(err)
	}
	opts := provider.Options{Values: provider.Defaults(reg.Flags()), Getenv: func(string) string { return "" }}
	conns, err := reg.Connect(context.Background(), l, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conns.Close()
	if len(conns.Vendors) != 1 || conns.Where() != "the fake service" || conns.Budget() == nil || conns.List[0].Service != fake.Service {
		t.Fatalf("connections: %d vendors, where %q, service %q", len(conns.Vendors), conns.Where(), conns.List[0].Service)
	}
	rep, err := reconcile.Run(context.Background(), reconcile.Input{Loaded: l, Connect: func(context.Context, *reconcile.Loaded) ([]reconcile.Vendor, error) {
		return conns.Vendors, nil
	}})
	if err != nil || !rep.Converged || svc.Writes() != 1 {
		t.Fatalf("sync through the connection: err=%v converged=%t writes=%d", err, rep.Converged, svc.Writes())
	}
	if err := reg.Check(provider.Options{Values: provider.Values{"fake-calls-per-hour": 0}}); err == nil {
		t.Error("a bad connection flag checks")
	}
}
