package gateway

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

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
}

// Module is the REST edge's registration: it serves the REST routes of
// every registered component that has them, reaching each in-process when
// it runs in the same process and through etcd otherwise.
func Module() module.Module {
	return module.Module{
		Name: Name,
		Edge: true,
		Init: func(_ context.Context, env *module.Env) (*module.Component, error) {
			var backends []Backend
			var docs []APIDoc
			var pages []Mount
			for _, m := range env.Modules() {
				if m.Pages != nil {
					h, err := m.Pages.New(env.Context(), module.PagesEnv{Log: env.Log.Named(m.Name), Config: env.Config, Client: env.Client})
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
				backends = append(backends, Backend{Name: m.Name, Conn: conn, REST: m.REST})
				if m.OpenAPI != nil {
					docs = append(docs, APIDoc{OpenAPI: m.OpenAPI, Security: m.OpenAPISecurity, Public: m.OpenAPIPublic})
				}
			}
			// The handlers live as long as the process.
			h, err := New(env.Context(), Options{Logger: env.Log, Backends: backends, Registry: env.Metrics,
				TrustedProxies: env.TrustedProxies(), APIDocs: docs, Pages: pages, NoMetrics: !env.Config.MetricsOn()})
			if err != nil {
				return nil, err
			}
			return &module.Component{HTTP: h}, nil
		},
	}
}
