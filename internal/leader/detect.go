package leader

import (
	"fmt"
	"log/slog"
	"os"
)

// Where Kubernetes mounts a pod's service account.
const (
	ServiceAccountTokenFile     = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	ServiceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// Mode is what the operator asked for (--leader-election).
type Mode string

// Modes.
const (
	ModeAuto  Mode = "auto"  // a Lease in a cluster, a lock file when given, else none
	ModeLease Mode = "lease" // a Kubernetes Lease
	ModeFile  Mode = "file"  // a lock file (--leader-lock PATH)
	ModeNone  Mode = "none"  // no election: run one replica only
)

// Environment is what Detect looks at; the zero value looks at the real process.
type Environment struct {
	Getenv    func(string) string // default os.Getenv
	TokenFile string              // default ServiceAccountTokenFile
}

// Decision is the backend Detect chose and why, for the start-up log line.
type Decision struct {
	Backend Backend
	Reason  string
	// Warning, when set, should be logged as a warning: the replica runs without
	// election although it looks like one of several.
	Warning string
}

// Detect chooses the backend for mode. In "auto": a lock path given is a lock file
// (an explicit choice wins); in a cluster (KUBERNETES_SERVICE_HOST set and a service
// account token mounted) a Lease; otherwise no election. In a cluster without a token
// mounted (the Helm chart mounts it only with leader election enabled) there is no
// election, with a warning.
func Detect(mode Mode, lockPath string, env Environment) (Decision, error) {
	getenv := env.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	token := env.TokenFile
	if token == "" {
		token = ServiceAccountTokenFile
	}
	switch mode {
	case ModeNone:
		return Decision{Backend: BackendNone, Reason: "leader election turned off: run a single replica"}, nil
	case ModeFile:
		if lockPath == "" {
			return Decision{}, &ConfigError{Field: "Path", Reason: "leader election by lock file needs --leader-lock PATH"}
		}
		return Decision{Backend: BackendFile, Reason: "lock file " + lockPath}, nil
	case ModeLease:
		return Decision{Backend: BackendLease, Reason: "Kubernetes Lease"}, nil
	case ModeAuto, "":
	default:
		return Decision{}, &ConfigError{Field: "Mode", Reason: fmt.Sprintf("%q: want auto, lease, file or none", string(mode))}
	}
	if lockPath != "" {
		return Decision{Backend: BackendFile, Reason: "lock file " + lockPath + " given"}, nil
	}
	if getenv("KUBERNETES_SERVICE_HOST") == "" {
		return Decision{Backend: BackendNone, Reason: "not in a Kubernetes cluster and no --leader-lock given: single replica"}, nil
	}
	if fi, err := os.Stat(token); err != nil || fi.IsDir() {
		return Decision{
			Backend: BackendNone,
			Reason:  "in a Kubernetes cluster without a service account token",
			Warning: "running in Kubernetes without leader election: no service account token is mounted at " + token +
				"; run a single replica, or enable leader election (it mounts the token and grants the Lease RBAC)",
		}, nil
	}
	return Decision{Backend: BackendLease, Reason: "in a Kubernetes cluster with a service account token"}, nil
}

// Options are the settings New passes on to the chosen backend.
type Options struct {
	Identity string
	Timings
	Logger *slog.Logger
	// LockPath is the lock file (BackendFile).
	LockPath string
	// Lease settings (BackendLease): Identity, Timings and Logger above are used
	// instead of the ones in it.
	Lease LeaseConfig
}

// New builds the Elector of a Decision.
func New(d Decision, o Options) (Elector, error) {
	switch d.Backend {
	case BackendLease:
		cfg := o.Lease
		cfg.Identity, cfg.Timings, cfg.Logger = o.Identity, o.Timings, o.Logger
		return NewLease(cfg)
	case BackendFile:
		return NewFile(FileConfig{Path: o.LockPath, Identity: o.Identity, Timings: o.Timings, Logger: o.Logger})
	case BackendNone:
		return NewSingle(o.Identity, o.Logger), nil
	}
	return nil, &ConfigError{Field: "Backend", Reason: fmt.Sprintf("%q: unknown", string(d.Backend))}
}

var (
	_ Elector = (*LeaseElector)(nil)
	_ Elector = (*FileElector)(nil)
	_ Elector = (*Single)(nil)
)
