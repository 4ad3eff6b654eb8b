package module

import (
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	"context"
	"strings"
	"testing"
)

func mod(name string, uses ...string) Module {
	return Module{Name: name, Uses: uses, Init: func(context.Context, *Env) (*Component, error) { return nil, nil }}
}

func names(ms []*Module) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return strings.Join(out, ",")
}

func TestResolve(t *testing.T) {
	r := &Registry{}
	edge := mod("gateway")
	edge.Edge = true
	r.Register(edge)
	a := mod("authz", "identity")
	a.REST = func(context.Context, *runtimeMux, connI) error { return nil }
	r.Register(a)
	id := mod("identity")
	id.REST = a.REST
	r.Register(id)
	extra := mod("extra")
	extra.NotInAll = true
	r.Register(extra)

	for _, tc := range []struct{ target, want string }{
		{"all", "identity,authz,gateway"},
		{"gateway", "gateway"},
		{"gateway,identity", "identity,gateway"},
		{" authz , identity ", "identity,authz"},
		{"all,extra", "identity,authz,gateway,extra"},
		{"identity,identity", "identity"},
	} {
		got, err := r.Resolve(tc.target)
		if err != nil || names(got) != tc.want {
			t.Errorf("Resolve(%q) = %s, %v; want %s", tc.target, names(got), err, tc.want)
		}
	}
	for _, bad := range []string{"", " , ", "identiti", "all,nosuch"} {
		if _, err := r.Resolve(bad); err == nil || !strings.Contains(err.Error(), "known: all, authz, extra, gateway, identity") {
			t.Errorf("Resolve(%q) error = %v, want one listing the known targets", bad, err)
		}
	}
}

func TestResolveCycleAndUnknownUse(t *testing.T) {
	r := &Registry{}
	r.Register(mod("a", "b"))
	r.Register(mod("b", "a"))
	if _, err := r.Resolve("a,b"); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("cycle: %v", err)
	}
	r = &Registry{}
	r.Register(mod("a", "ghost"))
	if _, err := r.Resolve("a"); err == nil || !strings.Contains(err.Error(), `unknown module "ghost"`) {
		t.Fatalf("unknown use: %v", err)
	}
}

// Calls set no start order: two modules may call each other.
func TestResolveCallsAreNoCycle(t *testing.T) {
	r := &Registry{}
	a := mod("a", "b")
	b := mod("b")
	b.Calls = []string{"a"}
	r.Register(a)
	r.Register(b)
	got, err := r.Resolve("a,b")
	if err != nil || names(got) != "b,a" {
		t.Fatalf("Resolve = %s, %v; want b,a", names(got), err)
	}
	r = &Registry{}
	c := mod("c")
	c.Calls = []string{"ghost"}
	r.Register(c)
	if _, err := r.Resolve("c"); err == nil || !strings.Contains(err.Error(), `unknown module "ghost"`) {
		t.Fatalf("unknown call: %v", err)
	}
}

func TestRegisterRejects(t *testing.T) {
	for name, m := range map[string]Module{
		"duplicate": mod("a"),
		"bad name":  mod("Has Space"),
		"all":       mod("all"),
		"no init":   {Name: "b"},
	} {
		t.Run(name, func(t *testing.T) {
			r := &Registry{}
			r.Register(mod("a"))
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			r.Register(m)
		})
	}
}

type (
	runtimeMux = runtime.ServeMux
	connI      = grpc.ClientConnInterface
)
