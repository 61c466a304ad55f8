package provider

import (
	"context"
	"io"
	"log/slog"
	"net/http"

	"github.com/flagsync/flagsync/internal/api"
	"github.com/flagsync/flagsync/internal/export"
	"github.com/flagsync/flagsync/internal/reconcile"
)

// Provider is one flag service. The registration lines of the built-in providers are in
// internal/provider/builtin; a test registers its own with Registry.Register.
type Provider interface {
	// Name is the service's name on the command line and in flag files: sandbox --vendor,
	// export --vendor, and the value of the vendor: key by which flagsync.yaml or a flag
	// file says it is the service's ("kameleoon", "split").
	Name() string
	// Files returns the vendor that claims and loads the service's flag files, without a
	// client (its Do fails): validate, comment and the load step use it. A provider whose
	// files name no vendor takes the files no other claims (reconcile.Fallback).
	Files() reconcile.Vendor
	// Help is what the commands' help and reports say of the service.
	Help() Help
	// Flags declares the flags (and their environment variables) that connect to the
	// service, for plan, sync, run and export.
	Flags() []Flag
	// Check checks the connection flags (in.Values, in.Sandbox, in.Getenv) before
	// anything runs; its error is a usage error.
	Check(in ConnectInput) error
	// Connect builds the service's client: for its embedded sandbox, started here, with
	// in.Sandbox, otherwise with the credentials of the environment.
	Connect(ctx context.Context, in ConnectInput) (*Connection, error)
	// Sandbox is the service's embedded sandbox, served by flagsync sandbox --vendor NAME.
	Sandbox() Sandbox
}

// Usage is a service's part of a command's help.
type Usage struct {
	Text     string   // paragraphs, wrapped at 90 columns
	Examples []string // command lines
}

// Help is what the commands say of a service.
type Help struct {
	// Service names the service for people, as its plans do ("Kameleoon"); it is
	// Files().Service().
	Service string
	// Scope is what a plan's scope is, singular ("site", "Split workspace").
	Scope string
	// Files says which flag files are the service's ("Kameleoon flag files",
	// "Split flag files (vendor: split in flagsync.yaml or in the file)").
	Files string
	// Credentials says where the service's credentials come from, as a sentence.
	Credentials string
	// Sandbox names what --sandbox starts for it ("a Kameleoon-compatible sandbox").
	Sandbox string
	// Automation names who else changes the service's flags, for the differences a plan
	// leaves alone ("Kameleoon's automation").
	Automation string
}

// ConnectInput is what Connect is given.
type ConnectInput struct {
	Values  Values              // the provider's Flags, as parsed
	Getenv  func(string) string // the process environment (credentials)
	Sandbox bool                // --sandbox: start the embedded sandbox
	// Repo is the service's part of the loaded repository (nil when there is none, as
	// for export): the embedded sandbox's project gets every environment it uses.
	Repo reconcile.Repo
	// Environments are more environments the embedded sandbox must have (doctor's).
	Environments []string
	Observe      func(api.CallInfo) // sees every HTTP exchange; optional
	Logger       *slog.Logger       // the client's and the sandbox's
}

// Connection is a connected service.
type Connection struct {
	Service string           // the service's name for people (set by Connect)
	Vendor  reconcile.Vendor // reads and writes through the client
	Where   string           // for people: "Kameleoon (https://…)", "the sandbox (.flagsync/sandbox.json)"
	Budget  *api.Budget      // the client's rate budget
	Close   func()           // stops the embedded sandbox; never nil
}

// Sandbox is a service's embedded sandbox as a command serves it.
type Sandbox struct {
	// Usage describes the sandbox for flagsync sandbox -h.
	Usage Usage
	// DefaultEnvironments are the environments of its project unless told otherwise.
	DefaultEnvironments []string
	// Flags are its own flags (--listen, --state, --environments and --vendor are the
	// command's).
	Flags []Flag
	// New checks the flags (a *UsageError for a bad combination) and builds the server;
	// nil when the service has none (see None).
	New func(in SandboxInput) (*Server, error)
	// None, when set, says that the service has no embedded sandbox, and what to run
	// instead: New is nil, flagsync sandbox --vendor NAME is a usage error with this
	// message, and Connect with ConnectInput.Sandbox returns a *UsageError for the
	// service's files (Check does not refuse --sandbox, which every service shares).
	// Usage still describes the service's part of flagsync sandbox -h.
	None string
}

// SandboxInput is what a Sandbox's New is given.
type SandboxInput struct {
	Values       Values
	Getenv       func(string) string
	Environments []string // --environments; empty means the sandbox's defaults
	StatePath    string   // --state; empty means memory only
	Logger       *slog.Logger
}

// Server is a sandbox ready to serve.
type Server struct {
	Handler http.Handler
	// Listening logs that the sandbox listens on addr, and with which credentials.
	Listening func(addr string)
}

// Exporter is a Provider that writes live flags as flag files (flagsync export).
type Exporter interface {
	Provider
	// ExportUsage describes what the service's export reads and writes, for the help.
	ExportUsage() Usage
	// ExportFlags are export's flags for the service (what to export).
	ExportFlags() []Flag
	// CheckExport checks them before anything runs; its error is a usage error.
	CheckExport(v Values) error
	// Export reads the live flags through conn and builds the files and their check.
	Export(ctx context.Context, conn *Connection, v Values, opts export.Options) (*Exported, error)
}

// Exported is what an export read and built.
type Exported struct {
	Export *export.Export
	Check  *export.Check
	What   string   // what was exported, for people: "2 sites", "workspace ws-1"
	Noun   string   // a scope, singular: "site"
	Empty  []string // scopes that have no flags
}

// Schemas is a Provider whose files have JSON Schemas (draft 2020-12), for editors and
// other validators: flagsync schema flag|settings --vendor NAME writes them out.
type Schemas interface {
	Provider
	// FlagSchema returns the schema of one of the service's flag files, as embedded in
	// the binary; the caller must not modify it.
	FlagSchema() []byte
	// SettingsSchema returns the schema of flagsync.yaml in the service's repositories.
	SettingsSchema() []byte
}

// Doctor is a Provider that can probe an account once (flagsync doctor): the behaviours
// flagsync relies on, and how the account reads what the service's docs leave open.
type Doctor interface {
	Provider
	// DoctorUsage describes the probe for flagsync doctor -h.
	DoctorUsage() Usage
	// DoctorFlags are doctor's flags for the service.
	DoctorFlags() []Flag
	// NewProbe checks the flags (a *UsageError) and prepares the probe through a
	// connection built from in (the embedded sandbox with in.Sandbox).
	NewProbe(in ConnectInput) (Probe, error)
}

// Probe is a prepared doctor run.
type Probe interface {
	// Preface says what the probe will do and how many calls it may make.
	Preface() string
	// Run probes the account.
	Run(ctx context.Context) ProbeReport
	// Close stops what the probe started.
	Close()
}

// ProbeReport is what a probe found.
type ProbeReport interface {
	// OK reports whether every behaviour flagsync relies on holds.
	OK() bool
	WriteText(w io.Writer) error
	WriteJSON(w io.Writer) error
}

// UsageError is a bad command line: the command exits 64 (EX_USAGE).
type UsageError struct{ Msg string }

// Error is the message, for the command to print after its name.
func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: sprintf(format, args...)}
}
