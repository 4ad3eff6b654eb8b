package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/uias/uias/gateway/console"
	"github.com/uias/uias/pkg/apiid"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/module"
)

// Name is the REST edge's component name.
const Name = "gateway"

// Backend is one component behind the edge: its REST registration (the
// generated Register...HandlerClient calls) and its connection.
type Backend struct {
	Name string
	Conn grpc.ClientConnInterface
	REST func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error
	// BodyLimits are the component's body limits by path prefix
	// (module.Module.BodyLimits).
	BodyLimits map[string]int64
	// FileRoutes are the prefixes of its file routes (module.Module.FileRoutes).
	FileRoutes []string
}

// Config is the gateway section of the configuration (YAML key "gateway").
type Config struct {
	// Backends names the components deployed behind this edge, which
	// /readyz waits for (e.g. [identity, ticket]). Empty (the default): the
	// components running in this process and those registered in etcd
	// since the edge started.
	Backends []string `yaml:"backends"`
	// InstitutionCode is the institution's 6-character code in the
	// uniform interface ids /openapi.json publishes (U_API_ID, JR/T 0185
	// Appendix B: the first 6 characters of the financial institution
	// code). Empty: apiid.DefaultInstitution.
	InstitutionCode string `yaml:"institution_code"`
	// Console serves the graphical management console under /console/
	// (gateway/console; default on). Off: /console/ answers 404.
	Console bool `yaml:"console"`
}

// Settings returns the gateway section of cfg (nil if cfg has none).
func Settings(cfg *config.Config) *Config {
	c, _ := cfg.Section(Name).(*Config)
	return c
}

// Bind implements config.Section.
func (c *Config) Bind(b *config.Binder) {
	b.List(&c.Backends, "UIAS_GATEWAY_BACKENDS", "gateway-backends",
		"components deployed behind the REST edge that /readyz waits for (comma list; empty: those running in the process or registered in etcd)")
	b.String(&c.InstitutionCode, "UIAS_INSTITUTION_CODE", "institution-code",
		"the institution's 6-character code in the interface ids (U_API_ID) of /openapi.json (default 000000)")
	b.Bool(&c.Console, "UIAS_GATEWAY_CONSOLE", "gateway-console",
		"serve the graphical management console under /console/ (false: /console/ answers 404)")
}

// Complete implements config.Section.
func (c *Config) Complete(*config.Config) {}

// Validate implements config.Section. Whether each name is a component
// the edge serves is checked at start, against the registered modules.
func (c *Config) Validate(*config.Config) error {
	var errs []error
	if c.InstitutionCode != "" {
		if err := apiid.CheckInstitution(c.InstitutionCode); err != nil {
			errs = append(errs, &config.FieldError{Field: "gateway.institution_code", Msg: err.Error()})
		}
	}
	for i, n := range c.Backends {
		if n == "" || n == config.TargetAll || strings.ContainsAny(n, " /") {
			errs = append(errs, &config.FieldError{Field: "gateway.backends", Msg: fmt.Sprintf("%q is not a component name", n)})
		} else if slices.Contains(c.Backends[:i], n) {
			errs = append(errs, &config.FieldError{Field: "gateway.backends", Msg: fmt.Sprintf("%q is named twice", n)})
		}
	}
	return errors.Join(errs...)
}

// Module is the REST edge's registration: it serves the REST routes of
// every registered component that has them, reaching each in-process when
// it runs in the same process and through etcd otherwise.
func Module() module.Module {
	return module.Module{
		Name:   Name,
		Edge:   true,
		Config: func() config.Section { return &Config{Console: true} },
		Init: func(_ context.Context, env *module.Env) (*module.Component, error) {
			var backends []Backend
			var docs []APIDoc
			var pages []Mount
			var signer grpcx.ResponseSigner
			for _, m := range env.Modules() {
				if m.ResponseSigner != nil && signer == nil {
					// The holder of the key ring signs the REST answers
					// to signed requests (answers.go).
					conn, err := env.Client(m.Name)
					if err != nil {
						return nil, err
					}
					signer = m.ResponseSigner(conn)
				}
				if m.Pages != nil {
					h, err := m.Pages.New(env.Context(), module.PagesEnv{Log: env.Log.Named(m.Name), Config: env.Config, Client: env.Client, Go: env.Go})
					if err != nil {
						return nil, fmt.Errorf("%s pages: %w", m.Name, err)
					}
					pages = append(pages, Mount{Prefix: m.Pages.Prefix, Handler: h})
				}
				if m.REST == nil {
					continue
				}
				conn, err := env.Client(m.Name)
				if err != nil {
					return nil, err
				}
				backends = append(backends, Backend{Name: m.Name, Conn: conn, REST: m.REST, BodyLimits: m.BodyLimits, FileRoutes: m.FileRoutes})
				if m.OpenAPI != nil {
					docs = append(docs, APIDoc{OpenAPI: m.OpenAPI, Security: m.OpenAPISecurity, Public: m.OpenAPIPublic, Signed: m.OpenAPISigned,
						APIIDs: m.APIIDs})
				}
			}
			cfg, _ := env.Section().(*Config)
			if cfg == nil {
				cfg = &Config{Console: true}
			}
			if cfg.Console {
				m, err := consoleMount(env)
				if err != nil {
					return nil, err
				}
				if m != nil {
					pages = append(pages, *m)
				}
			}
			readyFor, err := readyFor(env, cfg.Backends, backends)
			if err != nil {
				return nil, err
			}
			// The handlers live as long as the process.
			h, err := New(env.Context(), Options{Logger: env.Log, Backends: backends, Registry: env.Metrics,
				TrustedProxies: env.TrustedProxies(), APIDocs: docs, Pages: pages, NoMetrics: !env.Config.MetricsOn(),
				ReadyFor: readyFor, ResponseSigner: signer, Institution: cfg.InstitutionCode})
			if err != nil {
				return nil, err
			}
			return &module.Component{HTTP: h}, nil
		},
	}
}

// discoverEvery is how often the edge reads from etcd which components
// are registered (in the background: /readyz never waits on etcd).
const discoverEvery = 2 * time.Second

// readyFor decides which backends /readyz waits for: those configured in
// gateway.backends; else those running in this process plus every one
// registered in etcd at any time since the edge started (a component whose
// replicas all crashed is still deployed: the edge is not ready without
// it, and stays so until it returns or the edge restarts).
func readyFor(env *module.Env, configured []string, backends []Backend) (func(context.Context) (ReadySet, error), error) {
	served := make([]string, len(backends))
	for i, b := range backends {
		served[i] = b.Name
	}
	if len(configured) > 0 {
		for _, n := range configured {
			if !slices.Contains(served, n) {
				return nil, &config.FieldError{Field: "gateway.backends",
					Msg: fmt.Sprintf("%q is not a component with REST routes on the edge (those are: %s)", n, strings.Join(served, ", "))}
			}
		}
		set := ReadySet{Names: slices.Clone(configured), How: "configured in gateway.backends"}
		return func(context.Context) (ReadySet, error) { return set, nil }, nil
	}
	var local []string
	for _, n := range served {
		if env.Runs(n) {
			local = append(local, n)
		}
	}
	if len(local) == len(served) || env.Config.Discovery != config.DiscoveryEtcd {
		set := ReadySet{Names: local, How: "the components running in this process"}
		return func(context.Context) (ReadySet, error) {
			if len(set.Names) == 0 {
				return ReadySet{}, errors.New("no component with REST routes runs behind this edge")
			}
			return set, nil
		}, nil
	}
	d := &discovered{seen: map[string]bool{}}
	env.Go(func(ctx context.Context) { d.run(ctx, env) })
	return func(context.Context) (ReadySet, error) {
		seen, err := d.get()
		var names []string
		for _, n := range served {
			if slices.Contains(local, n) || seen[n] {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			if err != nil {
				return ReadySet{}, errors.New("no UIAS component found behind this edge yet: etcd does not answer")
			}
			return ReadySet{}, errors.New("no UIAS component with REST routes is registered in etcd yet")
		}
		how := "running in this process or registered in etcd since the edge started"
		if err != nil {
			how += "; etcd does not answer now"
		}
		return ReadySet{Names: names, How: how}, nil
	}, nil
}

// discovered accumulates the components seen registered in etcd.
type discovered struct {
	mu   sync.Mutex
	seen map[string]bool
	err  error // of the last read; also set before the first read ends
	read bool  // a read has ended
}

func (d *discovered) get() (map[string]bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.err
	if !d.read {
		err = errors.New("not read yet")
	}
	return maps.Clone(d.seen), err
}

// run reads the registered components now and every discoverEvery until
// ctx ends; each read is bounded by discoverEvery.
func (d *discovered) run(ctx context.Context, env *module.Env) {
	t := time.NewTicker(discoverEvery)
	defer t.Stop()
	failing := false
	for {
		rctx, cancel := context.WithTimeout(ctx, discoverEvery)
		found, err := env.Discovered(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		d.mu.Lock()
		for _, n := range found {
			if !d.seen[n] {
				env.Log.Info("component registered in etcd: /readyz waits for it", zap.String("component", n))
			}
			d.seen[n] = true
		}
		d.err, d.read = err, true
		d.mu.Unlock()
		if err != nil && !failing {
			env.Log.Warn("cannot read the registered components from etcd; /readyz waits for those seen before", zap.Error(err))
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// consoleMount is the management console (gateway/console), an edge page
// like /openapi.json: nil when identity is not registered behind the edge.
func consoleMount(env *module.Env) (*Mount, error) {
	has := func(name string) bool {
		return slices.ContainsFunc(env.Modules(), func(m *module.Module) bool { return m.Name == name })
	}
	h, err := console.OnEdge(env.Log.Named("console"), env.Client, has)
	if err != nil || h == nil {
		return nil, err
	}
	return &Mount{Prefix: console.Prefix, Handler: h}, nil
}
