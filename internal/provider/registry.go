package provider

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Registry holds the providers a program knows, in the order they were registered: the
// order a repository's services are loaded, planned and shown in.
type Registry struct {
	providers []Provider
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Register adds p. It panics, as a program that cannot start should, when p's name or
// service is taken, when p takes unclaimed files and another provider already does, or
// when one of its connection flags has another provider's name.
func (r *Registry) Register(p Provider) {
	flags := map[string]string{}
	for _, q := range r.providers {
		if q.Name() == p.Name() || q.Help().Service == p.Help().Service {
			panic(fmt.Sprintf("provider: %s registered twice", p.Name()))
		}
		if takesUnclaimed(q) && takesUnclaimed(p) {
			panic(fmt.Sprintf("provider: %s and %s both take the flag files no vendor claims", q.Name(), p.Name()))
		}
		for _, f := range q.Flags() {
			flags[f.Name] = q.Name()
		}
	}
	for _, f := range p.Flags() {
		if other, ok := flags[f.Name]; ok {
			panic(fmt.Sprintf("provider: %s's flag --%s is %s's", p.Name(), f.Name, other))
		}
	}
	r.providers = append(r.providers, p)
}

func takesUnclaimed(p Provider) bool {
	f, ok := p.Files().(reconcile.Fallback)
	return ok && f.TakesUnclaimed()
}

// All returns the providers in registration order.
func (r *Registry) All() []Provider { return append([]Provider(nil), r.providers...) }

// Names returns the providers' names in registration order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.providers))
	for i, p := range r.providers {
		out[i] = p.Name()
	}
	return out
}

// Lookup returns the provider named name.
func (r *Registry) Lookup(name string) (Provider, bool) {
	for _, p := range r.providers {
		if p.Name() == name {
			return p, true
		}
	}
	return nil, false
}

// Default is the provider a command uses when none is named: the one that takes the
// flag files no other claims, else the first registered. Nil when there is none.
func (r *Registry) Default() Provider {
	for _, p := range r.providers {
		if takesUnclaimed(p) {
			return p
		}
	}
	if len(r.providers) > 0 {
		return r.providers[0]
	}
	return nil
}

// Service returns the provider of a service named as plans name it ("Kameleoon").
func (r *Registry) Service(service string) (Provider, bool) {
	for _, p := range r.providers {
		if p.Help().Service == service {
			return p, true
		}
	}
	return nil, false
}

// FileVendors returns every provider's file vendor (Files), for the load step.
func (r *Registry) FileVendors() []reconcile.Vendor {
	out := make([]reconcile.Vendor, len(r.providers))
	for i, p := range r.providers {
		out[i] = p.Files()
	}
	return out
}

// Flags returns every provider's connection flags.
func (r *Registry) Flags() []Flag {
	var out []Flag
	for _, p := range r.providers {
		out = append(out, p.Flags()...)
	}
	return out
}

// Check checks every provider's connection flags (see Provider.Check).
func (r *Registry) Check(o Options) error {
	for _, p := range r.providers {
		if err := p.Check(ConnectInput{Values: o.Values, Getenv: o.Getenv, Sandbox: o.Sandbox}); err != nil {
			return err
		}
	}
	return nil
}

// Automation names who else changes the flags of the given services, for people:
// "Kameleoon's automation", "Kameleoon's automation or Split's".
func (r *Registry) Automation(services []string) string {
	var out []string
	for _, s := range services {
		if p, ok := r.Service(s); ok && p.Help().Automation != "" {
			out = append(out, p.Help().Automation)
		}
	}
	return strings.Join(out, " or ")
}

// Options are how a command connects its services.
type Options struct {
	Values  Values              // every provider's connection flags
	Getenv  func(string) string // the process environment
	Sandbox bool                // --sandbox
	Observe func(api.CallInfo)  // sees every HTTP exchange of every client; optional
	Logger  *slog.Logger        // the clients' and sandboxes'
}

// Connections are a command's connected services.
type Connections struct {
	Vendors []reconcile.Vendor // in the loaded repository's order
	List    []*Connection
}

// Where says where the services are, for people: "Kameleoon (https://…) and Split (…)".
func (c *Connections) Where() string {
	where := make([]string, len(c.List))
	for i, conn := range c.List {
		where[i] = conn.Where
	}
	return strings.Join(where, " and ")
}

// Budget is the first service's rate budget (nil without one).
func (c *Connections) Budget() *api.Budget {
	for _, conn := range c.List {
		if conn.Budget != nil {
			return conn.Budget
		}
	}
	return nil
}

// Close stops every embedded sandbox. A nil Connections has none.
func (c *Connections) Close() {
	if c == nil {
		return
	}
	for _, conn := range c.List {
		conn.Close()
	}
}

// Connect connects every service the loaded repository needs (l.Needed, whether or not
// its files are valid: a daemon syncs them once they are), each through its provider, in
// the repository's order; an embedded sandbox gets the environments its valid files
// use. A nil l connects the default provider alone (a daemon that could not read the
// repository at start). It never falls back to a sandbox silently.
func (r *Registry) Connect(ctx context.Context, l *reconcile.Loaded, o Options) (*Connections, error) {
	c := &Connections{}
	var needed []reconcile.Vendor
	if l != nil {
		needed = l.Needed
	} else if p := r.Default(); p != nil {
		needed = []reconcile.Vendor{p.Files()}
	}
	for _, v := range needed {
		p, ok := r.Service(v.Service())
		if !ok {
			c.Close()
			return nil, fmt.Errorf("connect: no provider for %s", v.Service())
		}
		var repo reconcile.Repo
		if l != nil {
			for _, pt := range l.Parts {
				if pt.Vendor.Service() == v.Service() {
					repo = pt.Repo
				}
			}
		}
		conn, err := Connect(ctx, p, repo, o)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.List = append(c.List, conn)
		c.Vendors = append(c.Vendors, conn.Vendor)
	}
	return c, nil
}

// Connect connects one provider's service; repo is its loaded files (nil: none).
func Connect(ctx context.Context, p Provider, repo reconcile.Repo, o Options) (*Connection, error) {
	conn, err := p.Connect(ctx, ConnectInput{Values: o.Values, Getenv: o.Getenv, Sandbox: o.Sandbox,
		Repo: repo, Observe: o.Observe, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	conn.Service = p.Help().Service
	if conn.Close == nil {
		conn.Close = func() {}
	}
	return conn, nil
}
