package provider

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Flag declares one command-line flag of a provider. Its kind is its Default's type:
// string, int, time.Duration, bool, or []string (a list, repeated or comma-separated).
type Flag struct {
	Name    string
	Default any
	// Usage is the flag's help. The command appends the variable that sets the flag;
	// Usage does not name it.
	Usage string
	// EnvDefault names the environment variable that sets the flag when the command line
	// does not, when it is not the command's rule (FLAGSYNC_ + the name in capitals with
	// '-' as '_'; FLAGSYNC_SANDBOX_ + … for flagsync sandbox's flags): a vendor's
	// documented variable.
	EnvDefault string
	// EnvByProvider says the provider reads EnvDefault itself, where the flag applies (a
	// vendor's API URL is not read with --sandbox): the command names the variable in
	// the help but does not set the flag from it.
	EnvByProvider bool
	// State marks the file an embedded sandbox keeps its flags in: a command that
	// suggests another repeats it when it is not the default.
	State bool
	// Values, for a string flag, are the only values it takes: the command refuses
	// another as a usage error, lists them in the help and completes them. Default must
	// be one of them.
	Values []string
}

// Values are the parsed values of a provider's flags, by name. The command line
// fills them; a test may build them.
type Values map[string]any

// String returns a string flag's value ("" when absent).
func (v Values) String(name string) string { s, _ := v[name].(string); return s }

// Int returns an int flag's value.
func (v Values) Int(name string) int { n, _ := v[name].(int); return n }

// Duration returns a duration flag's value.
func (v Values) Duration(name string) time.Duration { d, _ := v[name].(time.Duration); return d }

// Bool returns a bool flag's value.
func (v Values) Bool(name string) bool { b, _ := v[name].(bool); return b }

// List returns a list flag's values.
func (v Values) List(name string) []string { l, _ := v[name].([]string); return l }

// Defaults returns the flags' default values.
func Defaults(flags []Flag) Values {
	v := Values{}
	for _, f := range flags {
		v[f.Name] = f.Default
	}
	return v
}

// Secret reads a secret from the environment variable name, or from the file named by
// name + _FILE (Docker and Kubernetes secrets); the variable wins when both are set.
func Secret(getenv func(string) string, name string) (string, error) {
	if v := getenv(name); v != "" {
		return v, nil
	}
	if path := getenv(name + "_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read %s_FILE: %w", name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

// SplitList splits a comma-separated value, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// JoinFlags renders flag names for a message: "--a", "--a and --b", "--a, --b and --c".
func JoinFlags(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "--" + n
	}
	switch len(out) {
	case 0:
		return ""
	case 1:
		return out[0]
	}
	return strings.Join(out[:len(out)-1], ", ") + " and " + out[len(out)-1]
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
