package unleash

import (
	"testing"

	"github.com/flagsync/flagsync/internal/lifecycle"
	unleashmodel "github.com/flagsync/flagsync/internal/unleash/model"
)

func TestUnleashServing(t *testing.T) {
	s := func(name string, mod func(*unleashmodel.Strategy)) unleashmodel.Strategy {
		st := unleashmodel.Strategy{Name: name, Parameters: map[string]string{"rollout": "100"}}
		if mod != nil {
			mod(&st)
		}
		return st
	}
	for _, tc := range []struct {
		name string
		env  unleashmodel.Environment
		want lifecycle.Serving
	}{
		{"disabled", unleashmodel.Environment{Strategies: []unleashmodel.Strategy{s("default", nil)}}, lifecycle.Off},
		{"no strategy", unleashmodel.Environment{Enabled: true}, lifecycle.On},
		{"default", unleashmodel.Environment{Enabled: true, Strategies: []unleashmodel.Strategy{s("default", nil)}}, lifecycle.On},
		{"rollout 100", unleashmodel.Environment{Enabled: true, Strategies: []unleashmodel.Strategy{s("flexibleRollout", nil)}}, lifecycle.On},
		{"rollout 10", unleashmodel.Environment{Enabled: true, Strategies: []unleashmodel.Strategy{
			s("flexibleRollout", func(x *unleashmodel.Strategy) { x.Parameters["rollout"] = "10" })}}, lifecycle.Partial},
		{"constrained", unleashmodel.Environment{Enabled: true, Strategies: []unleashmodel.Strategy{
			s("default", func(x *unleashmodel.Strategy) { x.Constraints = []unleashmodel.Constraint{{ContextName: "userId"}} })}}, lifecycle.Partial},
		{"all disabled", unleashmodel.Environment{Enabled: true, Strategies: []unleashmodel.Strategy{
			s("default", func(x *unleashmodel.Strategy) { x.Disabled = true })}}, lifecycle.Off},
		{"unread", unleashmodel.Environment{Enabled: true, Unread: true}, lifecycle.Partial},
	} {
		if got := unleashServing(&tc.env); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
