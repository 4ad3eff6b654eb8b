// Package module is the UIAS component system (the Grafana Mimir/Loki
// "modules" pattern). Every component (identity, ticket, authz, audit, sync,
// gateway, ...) registers itself once as a Module: its name, its config
// section, what it needs from the platform (SQL, NATS, other components'
// gRPC clients) and an Init function. Start resolves a target ("all" or a
// comma list of names) to the modules to run, in dependency order, provides
// what they need (an embedded NATS and SQLite files in monolithic mode; etcd,
// a NATS cluster and PostgreSQL in microservices mode), serves their gRPC
// services on one server and the REST edge on one HTTP listener, registers
// them in etcd and stops them in reverse order.
//
// Adding a component is: its proto, its folder under services/, and one
// Register line in cmd/uias/app (see docs/adr/0002-component-modules.md).
package module

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/apiid"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/grpcx"
)

// Module declares one component.
type Module struct {
	// Name is the target name, the config section key, the etcd name
	// (etcd:///uias/<Name>) and the logger name: lower case, [a-z0-9_-].
	Name string
	// Config returns the component's config section with its defaults (nil:
	// the component has no settings). Env.Section hands it back at Init.
	Config func() config.Section
	// SQL: the component keeps data in SQL (Env.SQL).
	SQL bool
	// NATS: the component uses NATS JetStream (Env.NATS).
	NATS bool
	// Uses names the components whose gRPC clients Init asks for
	// (Env.Client). Those running in the same process start first.
	Uses []string
	// Calls names components whose clients it asks for (Env.Client) but
	// calls only while serving, never during Init: unlike Uses it sets no
	// start order, so two components may call each other (identity asks
	// authz about administrators, authz asks identity about tokens).
	Calls []string
	// Edge marks the REST edge: it uses the client of every component that
	// has REST handlers (and starts after those running in the process).
	Edge bool
	// REST registers the component's REST routes on the edge's mux, through
	// its generated Register...HandlerClient functions; conn reaches the
	// component (in-process or through etcd). nil: no REST.
	REST func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error
	// BodyLimits raises the edge's request body limit (1 MiB) for the
	// component's REST routes under each path prefix (e.g. "/v1/import/":
	// 16 GiB) whose handlers stream the body (file uploads) instead of
	// decoding it whole. nil: the edge's limit everywhere.
	BodyLimits map[string]int64
	// FileRoutes are the path prefixes of the component's REST routes
	// that move files (uploads, downloads) or pass over a whole store
	// (e.g. audit's verification of the log): the edge gives their calls
	// restfile.FileTime instead of its deadline for API calls, and lifts
	// its HTTP server's read and write timeouts for them.
	FileRoutes []string
	// OpenAPI is the component's OpenAPI 3.0 document as `make proto`
	// generates it from its proto (proto/gen/openapi), merged by the edge
	// into /openapi.json. nil: none.
	OpenAPI []byte
	// OpenAPISecurity names, per gRPC service of OpenAPI (the tag of its
	// operations, e.g. "AuthService"), the security schemes its REST
	// operations need, all together (AppCredentials, AdminCredentials).
	// Every operation needs an entry here or in OpenAPIPublic, or the edge
	// does not start.
	OpenAPISecurity map[string][]string
	// OpenAPIPublic lists the operations (operationId, e.g.
	// "AdminService_AdminLogin") that need no credentials.
	OpenAPIPublic []string
	// OpenAPISigned lists the gRPC services of OpenAPI whose calls take
	// request signatures (registered through grpcx.SignedBodies): the edge
	// declares the signature headers on their operations.
	OpenAPISigned []string
	// APIIDs place the component's operations that business systems call
	// in the catalogue of uniform interface ids (U_API_ID, JR/T 0185
	// Appendix B): the edge publishes each id in /openapi.json
	// (x-u-api-id). A sequence, once given, is never given to another
	// operation.
	APIIDs []apiid.Interface
	// ResponseSigner, for the component that holds the key ring
	// (identity): the signer of signed calls' REST answers the edge uses,
	// given the edge's client of this component (docs/adr/0016: the edge
	// alone sees the HTTP body; it asks the key's holder to sign it).
	ResponseSigner func(conn grpc.ClientConnInterface) grpcx.ResponseSigner
	// Pages is the component's own HTTP handler, which the edge mounts
	// (browser pages and protocols that are not REST mappings of its RPCs,
	// e.g. CAS under /cas/). nil: none.
	Pages *Pages
	// Retry names methods (full names, "/pkg.Service/Method") besides the
	// reads that are safe to try again on another replica when a replica
	// fails mid-call (e.g. a login: a repeated attempt is a new attempt).
	// Reads (Get, List, Prove, Verify, WhoAmI, Match...) and methods marked
	// idempotency_level NO_SIDE_EFFECTS or IDEMPOTENT are retried anyway.
	Retry []string
	// NotInAll leaves the component out of target "all" (it must be named).
	NotInAll bool
	// Init starts the component. It must return promptly; long-running work
	// goes to Env.Go, cleanup to Env.OnStop.
	Init func(ctx context.Context, env *Env) (*Component, error)
}

// Pages is a component's HTTP handler mounted by the edge under Prefix.
type Pages struct {
	// Prefix is the path the handler serves, ending in "/" (e.g.
	// "/cas/"); it gets every request under it, path intact.
	Prefix string
	// New builds the handler in the edge's process. It reaches its own
	// component and those it Uses through env.Client, in-process or
	// through etcd, with the request id and the client's origin the edge
	// put into each request's context.
	New func(ctx context.Context, env PagesEnv) (http.Handler, error)
}

// PagesEnv is what Pages.New gets from the edge.
type PagesEnv struct {
	// Log is the edge's logger named after the component.
	Log *zap.Logger
	// Config is the whole process configuration (the component's own
	// section included).
	Config *config.Config
	// Client returns the connection to the component itself or to one it
	// Uses.
	Client func(name string) (grpc.ClientConnInterface, error)
	// Go runs fn in the background until the edge's process stops, which
	// waits for it (Env.Go): the pages' own periodic work, e.g. CAS's
	// probes of its peers, which no request should wait on. nil: the
	// pages run no background work.
	Go func(fn func(ctx context.Context))
}

// Security schemes of /openapi.json: the credentials callers present at the
// REST edge, which forwards them to the components.
const (
	// SchemeAppID is a business system's App_ID (header X-Uias-App-Id).
	SchemeAppID = "AppID"
	// SchemeAppSecret is a business system's App_Secret (header
	// X-Uias-App-Secret).
	SchemeAppSecret = "AppSecret"
	// SchemeAdminToken is an administrator's bearer token (Authorization).
	SchemeAdminToken = "AdminToken"
)

// AppCredentials is the requirement of calls made by business systems:
// App_ID and App_Secret together.
var AppCredentials = []string{SchemeAppID, SchemeAppSecret}

// AdminCredentials is the requirement of administrator calls.
var AdminCredentials = []string{SchemeAdminToken}

// Component is what a started module offers the process.
type Component struct {
	// Register adds the component's gRPC services to the process (its
	// gRPC servers and the direct channel of in-process clients: the same
	// implementation is registered on each).
	Register func(s grpc.ServiceRegistrar)
	// Auth authenticates callers of the component's services (nil: open;
	// health and reflection are always open).
	Auth grpcx.CallerAuth
	// Admit may refuse a call to the component's services in the transport,
	// before anything is read (see grpcx.ServerOptions.Admit).
	Admit func(fullMethod string) error
	// OnBadRequest is told of calls to the component's services refused as
	// malformed before their handler ran (see
	// grpcx.ServerOptions.OnBadRequest), e.g. to audit them. nil: nothing.
	OnBadRequest func(ctx context.Context, fullMethod string, err error)
	// Ready reports whether the component can serve (e.g. its storage
	// answers); the health service and /readyz follow it. nil: always.
	Ready func(ctx context.Context) error
	// HTTP is the handler the process serves on http_addr (the edge only).
	HTTP http.Handler
	// Value is anything the component wants to expose to the process's
	// owner (tests, benchmarks): Process.Value(name) returns it.
	Value any
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Registry holds the registered modules.
type Registry struct {
	mods []*Module
}

// Register adds m. It panics on an invalid or duplicate name or a missing
// Init: registration is static program structure, fixed at build time.
func (r *Registry) Register(m Module) {
	switch {
	case !nameRE.MatchString(m.Name) || m.Name == config.TargetAll:
		panic(fmt.Sprintf("module: invalid module name %q", m.Name))
	case r.Lookup(m.Name) != nil:
		panic(fmt.Sprintf("module: %q registered twice", m.Name))
	case m.Init == nil:
		panic(fmt.Sprintf("module: %q has no Init", m.Name))
	}
	r.mods = append(r.mods, &m)
}

// Modules returns the registered modules in registration order.
func (r *Registry) Modules() []*Module { return slices.Clone(r.mods) }

// Lookup returns the module called name, or nil.
func (r *Registry) Lookup(name string) *Module {
	for _, m := range r.mods {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.mods))
	for _, m := range r.mods {
		out = append(out, m.Name)
	}
	sort.Strings(out)
	return out
}

// Sections returns the config sections of the registered modules, for
// config.Load and config.Default.
func (r *Registry) Sections() []config.SectionDef {
	var out []config.SectionDef
	for _, m := range r.mods {
		if m.Config != nil {
			out = append(out, config.SectionDef{Name: m.Name, New: m.Config})
		}
	}
	return out
}

// uses lists the modules m uses (Uses, and for the edge every module with
// REST handlers or pages, and those the latter use).
func (r *Registry) uses(m *Module) []string {
	out := slices.Clone(m.Uses)
	if m.Edge {
		add := func(name string) {
			if name != m.Name && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
		for _, o := range r.mods {
			if o.REST != nil || o.Pages != nil {
				add(o.Name)
			}
			if o.Pages != nil {
				for _, u := range o.Uses {
					add(u)
				}
			}
		}
	}
	return out
}

// Resolve turns a target ("all" or a comma list of module names) into the
// modules to run, ordered so that every module starts after the modules it
// uses that run in the same process. Unknown names, cycles and an empty
// target are errors.
func (r *Registry) Resolve(target string) ([]*Module, error) {
	var want []*Module
	seen := map[string]bool{}
	for _, name := range strings.Split(target, ",") {
		switch name = strings.TrimSpace(name); name {
		case "":
			continue
		case config.TargetAll:
			for _, m := range r.mods {
				if !m.NotInAll && !seen[m.Name] {
					seen[m.Name] = true
					want = append(want, m)
				}
			}
			continue
		}
		m := r.Lookup(name)
		if m == nil {
			return nil, fmt.Errorf("unknown target %q (known: all, %s)", name, strings.Join(r.Names(), ", "))
		}
		if !seen[name] {
			seen[name] = true
			want = append(want, m)
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("empty target (known: all, %s)", strings.Join(r.Names(), ", "))
	}
	for _, m := range r.mods {
		for _, u := range append(r.uses(m), m.Calls...) {
			if r.Lookup(u) == nil {
				return nil, fmt.Errorf("module %q uses unknown module %q", m.Name, u)
			}
		}
	}
	// Depth-first topological order over the "uses" edges inside the
	// process, keeping the registration order where there is no edge.
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var order []*Module
	var visit func(m *Module, path []string) error
	visit = func(m *Module, path []string) error {
		switch state[m.Name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("modules use each other in a cycle: %s", strings.Join(append(path, m.Name), " -> "))
		}
		state[m.Name] = visiting
		for _, u := range r.uses(m) {
			if seen[u] {
				if err := visit(r.Lookup(u), append(path, m.Name)); err != nil {
					return err
				}
			}
		}
		state[m.Name] = done
		order = append(order, m)
		return nil
	}
	for _, m := range want {
		if err := visit(m, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}
