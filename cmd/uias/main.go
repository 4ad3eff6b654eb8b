// Command uias is the UIAS identity authentication suite: "uias serve" runs
// the servers, "uias ctl" administers them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/uias/uias/cmd/uias/internal/bench"
	"github.com/uias/uias/cmd/uias/internal/ctl"
	"github.com/uias/uias/cmd/uias/internal/keyring"
	"github.com/uias/uias/cmd/uias/internal/natsctl"
	"github.com/uias/uias/cmd/uias/internal/serve"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `Usage: uias <command> [arguments]

Commands:
  serve     run UIAS (identity gRPC server, REST gateway, or both)
            "uias serve --help" lists its flags
  ctl       administer UIAS: orgs, users, groups, applications, account links
            "uias ctl help" lists its commands
  nats      operator tasks on an external NATS: "uias nats setup" creates
            the JetStream streams (the components may not)
  keys      "uias keys new" makes a key ring for the identity replicas
  bench     measure Authenticate and cheap RPCs against their floors
            "uias bench --help" lists its flags; "uias bench scale" and
            "uias bench capacity" (the design's 1 000 online people) theirs
  version   print the version
  help      print this help
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve.Main(ctx, args[1:], stdout, stderr)
	case "ctl":
		return ctl.Main(ctx, args[1:], stdin, stdout, stderr, os.Getenv)
	case "keys":
		return keyring.Main(args[1:], stdout, stderr)
	case "nats":
		return natsctl.Main(ctx, args[1:], stdout, stderr, os.LookupEnv)
	case "bench":
		return bench.Main(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "uias %s\n", versionString())
		return 0
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "uias: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// versionString is the build version plus the VCS revision when known.
func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " (" + rev + modified + ")"
	}
	return v + " " + info.GoVersion
}
