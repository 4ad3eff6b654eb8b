// Package natsctl is the `uias nats` command: operator tasks on an external
// NATS server. "uias nats setup" creates or updates the JetStream streams
// UIAS publishes to (CHANGES and AUDIT) with a privileged setup user, so
// that the components themselves need no right to create, edit, purge or
// delete streams (deploy/nats/nats-server.conf).
package natsctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/module"
)

const usage = `Usage: uias nats setup [--config FILE] [--nats-url URL] [--timeout 30s]

Creates the UIAS JetStream streams (CHANGES, AUDIT) on the external NATS
server of nats.url, or updates them to the configuration this version
expects. Run it once per deployment and after each upgrade, with the setup
user of deploy/nats/nats-server.conf, e.g.:

  UIAS_NATS_URL=tls://nats:4222 UIAS_NATS_USER=uias-setup \
  UIAS_NATS_PASSWORD_FILE=/run/secrets/nats-setup-password \
  UIAS_NATS_TLS_CA_FILE=/etc/uias/nats-ca.crt uias nats setup

It reads the nats.* settings like "uias serve" (YAML file, UIAS_* env);
it never deletes or purges a stream. In monolithic mode (target all) the
embedded NATS server needs no setup.
`

// Main runs `uias nats <args>` and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] != "setup" {
		fmt.Fprintf(stderr, "uias nats: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	fs := flag.NewFlagSet("uias nats setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "YAML config file (nats.* settings are used)")
	timeout := fs.Duration("timeout", 30*time.Second, "deadline for the whole setup")
	replicas := fs.Int("replicas", 0, "replicas of each stream on a NATS cluster (e.g. 3; 0 leaves them as they are, 1 for a new stream)")
	path := ""
	for i, a := range args[1:] {
		if (a == "--config" || a == "-config") && i+2 < len(args) {
			path = args[i+2]
		}
	}
	cfg, err := app.LoadConfig(path, env, fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "uias nats setup: %v\n", err)
		return 2
	}
	if cfg.NATS.URL == "" {
		fmt.Fprintln(stderr, "uias nats setup: nats.url is not set (UIAS_NATS_URL or --nats-url); the embedded NATS of target all needs no setup")
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "uias nats setup: invalid configuration:\n%v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := SetupReplicas(ctx, cfg.NATS, *replicas, stdout); err != nil {
		fmt.Fprintf(stderr, "uias nats setup: %v\n", err)
		return 1
	}
	return 0
}

// Setup connects with the nats settings n (as the "setup" client, inbox
// _INBOX.setup) and ensures the UIAS streams, reporting each on out.
func Setup(ctx context.Context, n config.NATS, out io.Writer) error {
	return SetupReplicas(ctx, n, 0, out)
}

// SetupReplicas is Setup that also gives each stream replicas copies on a
// NATS cluster when replicas > 0, so that losing one server loses no
// stream.
func SetupReplicas(ctx context.Context, n config.NATS, replicas int, out io.Writer) error {
	opts, err := module.NATSOptions(n, "setup")
	if err != nil {
		return err
	}
	nc, err := nats.Connect(n.URL, opts...)
	if err != nil {
		return fmt.Errorf("connect NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := events.EnsureStreams(ctx, js); err != nil {
		return err
	}
	for _, c := range events.StreamConfigs() {
		s, err := js.Stream(ctx, c.Name)
		if err != nil {
			return fmt.Errorf("read stream %s: %w", c.Name, err)
		}
		info := s.CachedInfo()
		if replicas > 0 && info.Config.Replicas != replicas {
			sc := info.Config
			sc.Replicas = replicas
			if _, err := js.UpdateStream(ctx, sc); err != nil {
				return fmt.Errorf("stream %s: set %d replicas: %w", c.Name, replicas, err)
			}
			info.Config.Replicas = replicas
		}
		fmt.Fprintf(out, "stream %s ready: subjects %v, %d replicas, %d messages\n", c.Name, info.Config.Subjects,
			max(info.Config.Replicas, 1), info.State.Msgs)
	}
	return nil
}
