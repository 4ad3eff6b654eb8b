// Package serve is the `uias serve` command: load config, start the
// requested target, wait for a signal, shut down gracefully.
package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	ulog "github.com/uias/uias/pkg/log"
)

// Main runs `uias serve [flags]` until ctx is done; it returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := load(args, os.LookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "uias serve: %v\n", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "uias serve: invalid configuration:\n%v\n", err)
		return 2
	}
	log, err := ulog.New(cfg.Log)
	if err != nil {
		fmt.Fprintf(stderr, "uias serve: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	a, err := app.Start(ctx, cfg, app.Options{Logger: log, Out: stdout})
	if err != nil {
		fmt.Fprintf(stderr, "uias serve: %v\n", err)
		return 1
	}
	if a.GRPCAddr() != "" {
		fmt.Fprintf(stdout, "uias %s: gRPC listening on %s\n", cfg.Target, a.GRPCAddr())
	}
	if a.HTTPAddr() != "" {
		fmt.Fprintf(stdout, "uias %s: HTTP listening on %s\n", cfg.Target, httpURL(cfg, a.HTTPAddr()))
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "uias: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Stop(sctx); err != nil {
		fmt.Fprintf(stderr, "uias serve: shutdown: %v\n", err)
		return 1
	}
	return 0
}

// load parses the command line and the environment of `uias serve` into a
// configuration (not yet validated). The Helm chart's tests parse each
// rendered Deployment's arguments and environment with it.
func load(args []string, env func(string) (string, bool), stderr io.Writer) (config.Config, error) {
	fs := flag.NewFlagSet("uias serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def, _ := env("UIAS_CONFIG")
	cfgPath := fs.String("config", def, "YAML config file (env UIAS_CONFIG)")
	return app.LoadConfig(configPathFromArgs(args, *cfgPath), env, fs, args)
}

// configPathFromArgs finds --config before the full flag parse, so the file
// can be applied before env and flags override it.
func configPathFromArgs(args []string, def string) string {
	for i, a := range args {
		switch {
		case a == "--config" || a == "-config":
			if i+1 < len(args) {
				return args[i+1]
			}
		case len(a) > 9 && a[:9] == "--config=":
			return a[9:]
		case len(a) > 8 && a[:8] == "-config=":
			return a[8:]
		}
	}
	return def
}

// httpURL is the base URL of the HTTP listener at addr: https when the
// listeners serve TLS (they then serve nothing else).
func httpURL(cfg config.Config, addr string) string {
	if cfg.TLS.CertFile != "" {
		return "https://" + addr
	}
	return "http://" + addr
}
