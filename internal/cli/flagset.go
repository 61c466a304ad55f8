package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flagsync/flagsync/internal/diag"
)

// EnvPrefix is the prefix of the environment variable of every flag that names no other:
// --max-changes is FLAGSYNC_MAX_CHANGES.
const EnvPrefix = "FLAGSYNC_"

// FlagSet is one command's flags: a flag.FlagSet (declare flags with its methods, as
// usual) and, per flag, the environment variable that sets it, the values it takes and
// how its default reads in the help.
//
// Every flag has one environment variable, named in its help line: the prefix (EnvPrefix
// unless SetEnvPrefix says otherwise) and the flag's name in capitals with '-' as '_',
// or the name Env gives it. Parse sets each flag from its variable, then from the
// command line, which wins.
type FlagSet struct {
	*flag.FlagSet
	program, command, synopsis string
	prefix                     string
	env                        map[string]envVar
	enums                      map[string][]string
	defaults                   map[string]string
	args                       []string // the arguments that are not flags
}

type envVar struct {
	name string
	// shown: named in the help, read by the code that owns the flag, not by Parse (a
	// vendor's variable that applies only in some modes).
	shown bool
	// presence: any non-empty value sets a bool flag (NO_COLOR, per no-color.org).
	presence bool
}

// NewFlagSet returns the flag set of `program command`; synopsis is the help's text
// before the list of flags.
func NewFlagSet(program, command, synopsis string) *FlagSet {
	fs := &FlagSet{
		FlagSet: flag.NewFlagSet(program+" "+command, flag.ContinueOnError),
		program: program, command: command, synopsis: synopsis,
		prefix: EnvPrefix, env: map[string]envVar{}, enums: map[string][]string{}, defaults: map[string]string{},
	}
	// Errors and help are written by the caller, from Parse's error.
	fs.FlagSet.SetOutput(io.Discard)
	fs.FlagSet.Usage = func() {}
	return fs
}

// Command is the command's name ("plan").
func (fs *FlagSet) Command() string { return fs.command }

// SetEnvPrefix sets the prefix of the flags' derived variable names (a server of its own,
// such as flagsync sandbox, uses FLAGSYNC_SANDBOX_).
func (fs *FlagSet) SetEnvPrefix(prefix string) { fs.prefix = prefix }

// Env names the variable that sets flag when it is not prefix + NAME: a vendor's
// documented variable, or a name users already rely on.
func (fs *FlagSet) Env(flag, name string) { fs.env[flag] = envVar{name: name} }

// EnvShown names flag's variable in its help without Parse reading it: the code that owns
// the flag reads the variable itself, where it applies.
func (fs *FlagSet) EnvShown(flag, name string) { fs.env[flag] = envVar{name: name, shown: true} }

// EnvPresence makes a bool flag true when its variable has any non-empty value, as
// NO_COLOR does.
func (fs *FlagSet) EnvPresence(flag, name string) { fs.env[flag] = envVar{name: name, presence: true} }

// EnvName is the variable that sets flag.
func (fs *FlagSet) EnvName(flag string) string {
	if e, ok := fs.env[flag]; ok {
		return e.name
	}
	return fs.prefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Enum declares the values flag takes: Parse refuses others, the help lists them and
// completion offers them.
func (fs *FlagSet) Enum(flag string, values ...string) { fs.enums[flag] = values }

// Values returns the values Enum declared for flag.
func (fs *FlagSet) Values(flag string) []string { return fs.enums[flag] }

// DefaultText says how flag's default reads in the help when the declared default is not
// what it is (a default computed from the machine, such as a folder under $HOME): the
// help stays the same on every machine.
func (fs *FlagSet) DefaultText(flag, text string) { fs.defaults[flag] = text }

// Given reports whether flag was given on the command line (not by its variable).
func (fs *FlagSet) Given(name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// UsageError is a bad command line: a mistyped flag, a bad value.
type UsageError struct {
	Msg string
}

// Error is the message, for the caller to print after the command's name.
func (e *UsageError) Error() string { return e.Msg }

// ErrHelp is what Parse returns for -h or --help: the caller writes the help.
var ErrHelp = flag.ErrHelp

// Parse sets every flag from its environment variable (getenv), then parses args. It
// returns ErrHelp for -h and --help, and a *UsageError for a mistyped flag (with the
// closest flag), a bad value in a variable or an argument, or a value Enum does not
// allow.
func (fs *FlagSet) Parse(args []string, getenv func(string) string) error {
	if err := fs.parseEnv(getenv); err != nil {
		return err
	}
	fs.args = nil
	for {
		if err := fs.FlagSet.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return ErrHelp
			}
			return fs.usageError(err)
		}
		rest := fs.FlagSet.Args()
		if len(rest) == 0 {
			break
		}
		// Flags may follow arguments (schema flag --vendor split), until a "--".
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			fs.args = append(fs.args, rest...)
			break
		}
		fs.args = append(fs.args, rest[0])
		args = rest[1:]
	}
	return fs.checkEnums()
}

// Args returns the arguments that are not flags, in order; flags may come before,
// between and after them; everything after "--" is an argument.
func (fs *FlagSet) Args() []string { return fs.args }

// NArg is len(Args()).
func (fs *FlagSet) NArg() int { return len(fs.args) }

// Arg returns the i-th argument, or "".
func (fs *FlagSet) Arg(i int) string {
	if i < 0 || i >= len(fs.args) {
		return ""
	}
	return fs.args[i]
}

func (fs *FlagSet) parseEnv(getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		e := fs.envVarOf(f.Name)
		if err != nil || e.shown {
			return
		}
		v := getenv(e.name)
		if v == "" {
			return
		}
		if e.presence {
			v = "true"
		}
		if serr := f.Value.Set(v); serr != nil {
			err = &UsageError{Msg: fmt.Sprintf("%s=%q (--%s): %v", e.name, v, f.Name, serr)}
		}
	})
	return err
}

func (fs *FlagSet) envVarOf(flag string) envVar {
	if e, ok := fs.env[flag]; ok {
		return e
	}
	return envVar{name: fs.EnvName(flag)}
}

// usageError turns the flag package's error into one that names flags as the help does
// (--name) and suggests the closest flag for an unknown one.
func (fs *FlagSet) usageError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		msg = "unknown flag --" + name
		if s := diag.Suggest(name, fs.Names()); s != "" && s != name {
			msg += "; did you mean --" + s + "?"
		}
		return &UsageError{Msg: msg}
	}
	msg = strings.NewReplacer("for flag -", "for flag --", "value for -", "value for --", "argument: -", "argument: --").Replace(msg)
	return &UsageError{Msg: msg}
}

func (fs *FlagSet) checkEnums() error {
	for name, vals := range fs.enums {
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if v := f.Value.String(); !slices.Contains(vals, v) {
			msg := fmt.Sprintf("--%s %q: want %s", name, v, orList(vals))
			if s := diag.Suggest(v, vals); s != "" {
				msg += "; did you mean " + s + "?"
			}
			return &UsageError{Msg: msg}
		}
	}
	return nil
}

// Names returns the flags' names, sorted.
func (fs *FlagSet) Names() []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// Flag describes one declared flag, for tests and completion.
type Flag struct {
	Name   string
	Env    string   // the variable that sets it
	Kind   string   // bool, int, int64, duration, string or list
	Values []string // the values it takes (Enum), if declared
	Usage  string
	// EnvShown: the variable is named in the help and read by the flag's owner (EnvShown),
	// not by Parse.
	EnvShown bool
}

// Flags describes the declared flags, sorted by name.
func (fs *FlagSet) Flags() []Flag {
	var out []Flag
	fs.VisitAll(func(f *flag.Flag) {
		out = append(out, Flag{Name: f.Name, Env: fs.EnvName(f.Name), Kind: kindOf(f), Values: fs.enums[f.Name], Usage: f.Usage, EnvShown: fs.envVarOf(f.Name).shown})
	})
	return out
}

func kindOf(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return "bool"
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "list"
	}
	switch g.Get().(type) {
	case int:
		return "int"
	case int64:
		return "int64"
	case string:
		return "string"
	case time.Duration:
		return "duration"
	}
	return fmt.Sprintf("%T", g.Get())
}

// WriteHelp writes the command's help: its synopsis, then each flag with what it takes,
// its default and its environment variable.
func (fs *FlagSet) WriteHelp(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nFlags:\n", strings.TrimSpace(fs.synopsis))
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if vals := fs.enums[f.Name]; len(vals) > 0 {
			arg = strings.Join(vals, "|")
		}
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		var notes []string
		if d := fs.defaultText(f); d != "" {
			notes = append(notes, "default "+d)
		}
		notes = append(notes, "env "+fs.EnvName(f.Name))
		fmt.Fprintf(w, "%s\n        %s (%s)\n", line, usage, strings.Join(notes, "; "))
	})
	fmt.Fprintf(w, "  -h, --help\n        show this help\n")
}

// defaultText is how f's default reads in the help: DefaultText's, else the declared
// default unless it is the type's zero value; strings quoted.
func (fs *FlagSet) defaultText(f *flag.Flag) string {
	if d, ok := fs.defaults[f.Name]; ok {
		return d
	}
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return ""
	}
	if kindOf(f) == "string" {
		return strconv.Quote(f.DefValue)
	}
	return f.DefValue
}

// HelpHint is the line after a usage error: where the flags are described.
func (fs *FlagSet) HelpHint() string {
	return fmt.Sprintf("Run '%s %s -h' for its flags.", fs.program, fs.command)
}

// orList renders "a", "a or b", "a, b or c".
func orList(vals []string) string {
	switch len(vals) {
	case 0:
		return ""
	case 1:
		return vals[0]
	}
	return strings.Join(vals[:len(vals)-1], ", ") + " or " + vals[len(vals)-1]
}
