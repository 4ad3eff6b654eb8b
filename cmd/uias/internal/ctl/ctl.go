// Package ctl implements "uias ctl", the administration command line client
// of the UIAS AdminService.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the call failed (server error, no token, I/O ...)
	exitUsage = 2 // the command line is wrong
	exitRows  = 3 // an import ran but some rows failed (its report lists them), or a command over several IDs failed some
)

// Defaults for the global flags.
const (
	defaultAddr    = "127.0.0.1:9090"
	defaultTimeout = 10 * time.Second
)

// usageHead is the start of "uias ctl help"; the command list after it is
// made from the command table (commandList), so no command is left out.
const usageHead = `Usage: uias ctl [global flags] <noun> <verb> [flags] [args]

Manage UIAS through its gRPC API: organisations, users, groups, applications
and account links, authorization (roles, grants, checks), single sign-on
sessions, the audit log, data keys, multi-centre sync and provisioning
subscriptions, bulk import and export.

Global flags (accepted before or after the noun):
  --addr HOST:PORT      gRPC address of the component serving the command: with
                        --target=all every one; else identity (org, user, group,
                        app, link, keys, import, export, login), authz (authz),
                        ticket (service, sessions), audit (audit), sync (sync)
                        (env UIAS_ADDR, default 127.0.0.1:9090)
  --output, -o table|json
                        output format (default table); json prints the API response
  --timeout DURATION    deadline for the whole command (default 10s)
  --tls-ca FILE         use TLS, trusting the CA certificates in FILE (env
                        UIAS_TLS_CA; default: plaintext, meant for loopback)
  --token TOKEN         admin bearer token (env UIAS_TOKEN)

Authentication:
  Every command except login/logout sends "authorization: Bearer <token>".
  The token is taken from, in order:
    1. --token or UIAS_TOKEN;
    2. the token file written by "uias ctl login": $UIAS_CONFIG_DIR/token,
       else $XDG_CONFIG_HOME/uias/token, else ~/.config/uias/token (mode 0600);
    3. if UIAS_ADMIN_USER and UIAS_ADMIN_PASSWORD are set, ctl logs in for
       this invocation only (nothing is stored).
  Passwords are never accepted as flag values: use --password-stdin (first
  line of standard input) or, for login, the UIAS_ADMIN_PASSWORD variable.

Commands:
`

// usageTail ends "uias ctl help".
const usageTail = `
Run "uias ctl <noun> <verb> --help" for what one command does and its flags.
Exit status: 0 success; 1 the operation failed; 2 bad command line; 3 an import
(or its --dry-run) ran but some rows failed: the report lists them, the other
rows were written (with --dry-run: nothing was written).
`

// nounOrder is the order "uias ctl help" lists the nouns in; a noun of the
// command table missing here is listed after these, so none is hidden.
var nounOrder = []string{"login", "logout", "org", "user", "group", "app", "link", "service", "authz", "sessions",
	"audit", "keys", "sync", "import", "export"}

// helpWidth is the width the command list of "uias ctl help" wraps at.
const helpWidth = 100

// usageText is the text of "uias ctl help": every noun and verb of cmds
// with its usage.
func usageText(cmds map[string]map[string]command) string {
	nouns := make([]string, 0, len(cmds))
	for _, n := range nounOrder {
		if _, ok := cmds[n]; ok {
			nouns = append(nouns, n)
		}
	}
	var rest []string
	for n := range cmds {
		if !slices.Contains(nounOrder, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	nouns = append(nouns, rest...)

	var b strings.Builder
	b.WriteString(usageHead)
	for i, n := range nouns {
		if i > 0 && n != "logout" {
			b.WriteString("\n")
		}
		verbs := make([]string, 0, len(cmds[n]))
		for v := range cmds[n] {
			verbs = append(verbs, v)
		}
		sort.Strings(verbs)
		for _, v := range verbs {
			line := strings.Join(strings.Fields(strings.Join([]string{n, v, cmds[n][v].usage}, " ")), " ")
			b.WriteString(wrapUsage(line, "  ", "      ", helpWidth))
		}
	}
	b.WriteString(usageTail)
	return b.String()
}

// wrapUsage wraps a usage line at width, breaking only at spaces outside
// brackets and parentheses so that an optional flag stays whole.
func wrapUsage(line, first, cont string, width int) string {
	var words []string
	depth, start := 0, 0
	for i, r := range line {
		switch r {
		case '[', '(':
			depth++
		case ']', ')':
			depth--
		case ' ':
			if depth <= 0 {
				words = append(words, line[start:i])
				start = i + 1
			}
		}
	}
	words = append(words, line[start:])
	var b strings.Builder
	cur := first
	fresh := true
	for _, w := range words {
		if !fresh && len(cur)+1+len(w) > width {
			b.WriteString(cur + "\n")
			cur, fresh = cont, true
		}
		if !fresh {
			cur += " "
		}
		cur += w
		fresh = false
	}
	b.WriteString(cur + "\n")
	return b.String()
}

// globals holds the global flags.
type globals struct {
	addr    string
	output  string
	timeout time.Duration
	tlsCA   string
	token   string
	remark  string
}

// addGlobals defines the global flags on fs with the current values of g as
// defaults, so flags given before the noun survive a second parse.
func (g *globals) addGlobals(fs *flag.FlagSet) {
	fs.StringVar(&g.addr, "addr", g.addr, "gRPC `address` of the component serving the command (env UIAS_ADDR)")
	fs.StringVar(&g.output, "output", g.output, "output `format`: table or json")
	fs.StringVar(&g.output, "o", g.output, "shorthand for --output")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "deadline for the whole command")
	fs.StringVar(&g.tlsCA, "tls-ca", g.tlsCA, "use TLS trusting the CA certificates in `file`")
	fs.Var(secretValue{&g.token}, "token", "admin bearer `token` (env UIAS_TOKEN)")
	fs.StringVar(&g.remark, "remark", g.remark, "a remark the audit records of the command keep (a reason, a ticket number; at most 500 bytes)")
}

// secretValue is a string flag whose value never appears in help output.
type secretValue struct{ p *string }

func (s secretValue) String() string { return "" }

func (s secretValue) Set(v string) error {
	*s.p = v
	return nil
}

func (g *globals) validate() error {
	switch g.output {
	case "table", "json":
	default:
		return fmt.Errorf("--output must be table or json, not %q", g.output)
	}
	if g.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, not %s", g.timeout)
	}
	if g.addr == "" {
		return errors.New("--addr must not be empty")
	}
	return nil
}

// usageError is a command-line mistake (exit 2).
type usageError struct {
	msg   string
	usage string // the command's usage line, if known
}

func (e *usageError) Error() string { return e.msg }

// rowsFailedError is an import that ran with some rows failed (exit 3).
type rowsFailedError struct {
	failed, rows int64
	dryRun       bool
}

func (e *rowsFailedError) Error() string {
	if e.dryRun {
		return fmt.Sprintf("%d of %d rows would fail (listed in the report); dry run: nothing was written", e.failed, e.rows)
	}
	return fmt.Sprintf("%d of %d rows failed (listed in the report); the other rows were written or skipped", e.failed, e.rows)
}

// partialError is a command over several items that did some and failed
// others (exit 3, like an import with failed rows).
type partialError struct{ msg string }

func (e *partialError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// app is one invocation of ctl.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	env    func(string) string
	g      globals
	// flags are the running command's flags (describe names the flag of
	// a refused request field).
	flags *flag.FlagSet
}

// command is one noun/verb pair.
type command struct {
	usage string // flags and args after "uias ctl <noun> <verb>"
	help  string
	// setup defines the command's flags and returns the function that runs
	// it with the positional arguments.
	setup func(a *app, fs *flag.FlagSet) func(args []string) error
}

// Main runs "uias ctl" with args (without "uias ctl") and returns the exit
// code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	if env == nil {
		env = func(string) string { return "" }
	}
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, env: env}
	a.g = globals{addr: defaultAddr, output: "table", timeout: defaultTimeout, token: env("UIAS_TOKEN")}
	if v := env("UIAS_ADDR"); v != "" {
		a.g.addr = v
	}
	a.g.tlsCA = env("UIAS_TLS_CA")

	// Global flags before the noun.
	fs := flag.NewFlagSet("uias ctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.g.addGlobals(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usageText(commands()))
			return exitOK
		}
		return a.usageFail(&usageError{msg: err.Error()})
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, usageText(commands()))
		return exitUsage
	}
	noun := rest[0]
	if noun == "help" {
		fmt.Fprint(stdout, usageText(commands()))
		return exitOK
	}

	var verb string
	var cmd *command
	var cmdArgs []string
	switch noun {
	case "login", "logout":
		verb = ""
		c := commands()[noun][""]
		cmd = &c
		cmdArgs = rest[1:]
	default:
		verbs, ok := commands()[noun]
		if !ok {
			return a.usageFail(&usageError{msg: fmt.Sprintf("unknown command %q", noun)})
		}
		// The verb is the first argument that is not a flag; global flags
		// may come between noun and verb.
		sub := flag.NewFlagSet("uias ctl "+noun, flag.ContinueOnError)
		sub.SetOutput(io.Discard)
		a.g.addGlobals(sub)
		if err := sub.Parse(rest[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, nounUsage(noun, verbs))
				return exitOK
			}
			return a.usageFail(&usageError{msg: err.Error(), usage: nounUsage(noun, verbs)})
		}
		if sub.NArg() == 0 {
			return a.usageFail(&usageError{msg: fmt.Sprintf("%q needs a subcommand", noun), usage: nounUsage(noun, verbs)})
		}
		verb = sub.Arg(0)
		c, ok := verbs[verb]
		if !ok {
			return a.usageFail(&usageError{msg: fmt.Sprintf("unknown subcommand %q for %q", verb, noun), usage: nounUsage(noun, verbs)})
		}
		cmd = &c
		cmdArgs = sub.Args()[1:]
	}

	name := strings.TrimSpace("uias ctl " + noun + " " + verb)
	cfs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	a.g.addGlobals(cfs)
	run := cmd.setup(a, cfs)
	usage := "Usage: " + name + " " + cmd.usage + "\n"
	if cmd.help != "" {
		usage += "\n" + cmd.help + "\n"
	}
	pos, err := parseInterspersed(cfs, cmdArgs)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage+"\nFlags:\n"+flagDefaults(cfs))
			return exitOK
		}
		return a.usageFail(&usageError{msg: err.Error(), usage: usage})
	}
	if err := a.g.validate(); err != nil {
		return a.usageFail(&usageError{msg: err.Error(), usage: usage})
	}
	a.flags = cfs
	if err := run(pos); err != nil {
		var re *rowsFailedError
		if errors.As(err, &re) {
			fmt.Fprintf(stderr, "error: %s\n", re)
			return exitRows
		}
		var pe *partialError
		if errors.As(err, &pe) {
			fmt.Fprintf(stderr, "error: %s\n", pe)
			return exitRows
		}
		var ue *usageError
		if errors.As(err, &ue) {
			if ue.usage == "" {
				ue.usage = usage
			}
			return a.usageFail(ue)
		}
		fmt.Fprintf(stderr, "error: %s\n", a.describe(err))
		return exitError
	}
	return exitOK
}

func (a *app) usageFail(e *usageError) int {
	fmt.Fprintf(a.stderr, "error: %s\n", e.msg)
	if e.usage != "" {
		fmt.Fprint(a.stderr, e.usage)
	}
	fmt.Fprintln(a.stderr, `Run "uias ctl help" for usage.`)
	return exitUsage
}

func nounUsage(noun string, verbs map[string]command) string {
	names := make([]string, 0, len(verbs))
	for v := range verbs {
		names = append(names, v)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Usage:\n")
	for _, v := range names {
		fmt.Fprintf(&b, "  uias ctl %s %s %s\n", noun, v, verbs[v].usage)
	}
	return b.String()
}

func flagDefaults(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}

// parseInterspersed parses fs allowing flags and positional arguments in any
// order; everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if n, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
				if _, numErr := strconv.ParseFloat(n, 64); numErr == nil {
					// "prove -1": the flag package's words say nothing useful
					return nil, fmt.Errorf("-%s is not a flag, and a negative number is no valid argument here", n)
				}
			}
			return nil, err
		}
		consumed := len(args) - fs.NArg()
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, fs.Args()...), nil
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// wantArgs checks the number of positional arguments.
func wantArgs(args []string, names ...string) error {
	if len(args) < len(names) {
		return usagef("missing %s", strings.Join(names[len(args):], " and "))
	}
	if len(args) > len(names) {
		return usagef("unexpected argument %q", args[len(names)])
	}
	for i, v := range args {
		if strings.TrimSpace(v) == "" {
			return usagef("%s must not be empty", names[i])
		}
	}
	return nil
}

// required checks that flags were given a value.
func required(pairs ...string) error {
	var missing []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			missing = append(missing, "--"+pairs[i])
		}
	}
	if len(missing) > 0 {
		return usagef("missing required flag %s", strings.Join(missing, ", "))
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}
