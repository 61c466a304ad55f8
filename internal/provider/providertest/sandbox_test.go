package providertest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/provider"
	"github.com/flagsync/flagsync/internal/provider/providertest/fake"
)

// recorder is a reporter that keeps what the check reported; Fatalf ends the check's
// goroutine, as testing.T's does.
type recorder struct {
	t      *testing.T
	failed []string
}

func (r *recorder) Helper()         {}
func (r *recorder) TempDir() string { return r.t.TempDir() }
func (r *recorder) Errorf(format string, args ...any) {
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// check runs checkSandbox on p and returns what it reported.
func check(t *testing.T, p provider.Provider) []string {
	r := &recorder{t: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkSandbox(r, p)
	}()
	<-done
	return r.failed
}

// withSandbox is a provider with another sandbox, and optionally another Connect.
type withSandbox struct {
	provider.Provider
	sb      provider.Sandbox
	connect func(provider.ConnectInput) (*provider.Connection, error)
}

func (w withSandbox) Sandbox() provider.Sandbox { return w.sb }

func (w withSandbox) Connect(ctx context.Context, in provider.ConnectInput) (*provider.Connection, error) {
	if w.connect != nil {
		return w.connect(in)
	}
	return w.Provider.Connect(ctx, in)
}

// TestSandboxCheck: the contract's sandbox check passes a working sandbox and a declared
// absence of one, and fails a New that always refuses, a missing New that is not
// declared, and a declared absence whose Connect does not refuse --sandbox.
func TestSandboxCheck(t *testing.T) {
	p := fake.Provider(fake.NewServer())
	refuse := func(provider.SandboxInput) (*provider.Server, error) {
		return nil, provider.Usagef("--vendor fake has no embedded sandbox")
	}
	refuseConnect := func(in provider.ConnectInput) (*provider.Connection, error) {
		if in.Sandbox {
			return nil, provider.Usagef("--sandbox: the fake service has no sandbox")
		}
		return p.Connect(context.Background(), in)
	}
	usage := provider.Usage{Text: "--vendor fake has no sandbox: run the fake service."}
	for _, tc := range []struct {
		name string
		p    provider.Provider
		want string // in a failure; "" passes
	}{
		{"working sandbox", p, ""},
		{"declared absence", withSandbox{p, provider.Sandbox{Usage: usage, None: "--vendor fake: no sandbox"}, refuseConnect}, ""},
		{"New always refuses", withSandbox{p, provider.Sandbox{Usage: usage, New: refuse}, nil}, "want a server"},
		{"no New, not declared", withSandbox{p, provider.Sandbox{Usage: usage}, refuseConnect}, "does not say so"},
		{"declared absence, Connect works", withSandbox{p, provider.Sandbox{Usage: usage, None: "--vendor fake: no sandbox"}, nil}, "want a *provider.UsageError"},
		{"declared absence with a New", withSandbox{p, provider.Sandbox{Usage: usage, None: "--vendor fake: no sandbox", New: refuse}, refuseConnect}, "declares New"},
		{"undescribed", withSandbox{p, provider.Sandbox{New: p.Sandbox().New}, nil}, "says nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failed := check(t, tc.p)
			switch {
			case tc.want == "" && len(failed) > 0:
				t.Errorf("failed: %q", failed)
			case tc.want != "" && !strings.Contains(strings.Join(failed, "\n"), tc.want):
				t.Errorf("reported %q, want a failure saying %q", failed, tc.want)
			}
		})
	}
}
