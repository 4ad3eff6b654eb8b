package serve

// Tests of the Helm chart charts/uias against this binary: every component
// the binary registers has its place in the chart, and each Deployment the
// chart renders starts `uias serve` with arguments and an environment that
// the real flag parser accepts and that validate, for the component it is
// named after. The tests that render the chart need helm (installed into .bin
// by scripts/chart-tools.sh; make test runs it and sets UIAS_HELM); without
// it they are skipped, saying so. scripts/chart-test.sh adds helm lint and
// kubeconform -strict.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/gateway"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/module"
)

// kubeVersion is the Kubernetes version the chart is rendered for.
const kubeVersion = "1.35.0"

// podIP stands for the pod address Kubernetes puts in POD_IP.
const podIP = "10.1.2.3"

// secretEnv are the variables that carry secrets: the chart must take each
// from a Secret (valueFrom.secretKeyRef), never from a value in clear.
var secretEnv = map[string]string{
	"UIAS_DB_DSN":             "postgres://uias@db.example:5432/uias?sslmode=verify-full",
	"UIAS_DB_PASSWORD":        "placeholder-db-password",
	"UIAS_NATS_PASSWORD":      "placeholder-nats-password",
	"UIAS_ETCD_PASSWORD":      "placeholder-etcd-password",
	"UIAS_INTERNAL_KEY":       "placeholder-internal-key-0123456789",
	"UIAS_KEYRING":            `{"version":2,"master":{"active":"m1","keys":{"m1":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}},"signing":{"active":"s1","keys":{"s1":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}}}`,
	"UIAS_BOOTSTRAP_PASSWORD": "Placeholder#Passw0rd",
	// The first security auditor's (it must differ from the administrator's).
	"UIAS_BOOTSTRAP_AUDITOR_PASSWORD": "Auditing#Placeh0lder",
}

// ctlEnv are variables of `uias ctl` (run with kubectl exec) that the chart
// may set besides those of `uias serve`.
var ctlEnv = []string{"UIAS_CONFIG_DIR"}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.work) not found above the working directory")
		}
		dir = parent
	}
}

func chartDir(t *testing.T) string { return filepath.Join(repoRoot(t), "charts", "uias") }

// helmBin is the helm binary: $UIAS_HELM (which must exist), else .bin/helm
// if installed, else the test is skipped.
func helmBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("UIAS_HELM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("UIAS_HELM=%s: %v (scripts/chart-tools.sh installs helm)", p, err)
		}
		return p
	}
	p := filepath.Join(repoRoot(t), ".bin", "helm")
	if _, err := os.Stat(p); err != nil {
		t.Skip("helm is not installed: scripts/chart-tools.sh installs it into .bin (make test and make chart-test do)")
	}
	return p
}

// render runs helm template on the chart with args (values files, --set)
// and returns the documents, or helm's error output.
func render(t *testing.T, helm string, args ...string) ([]map[string]any, error) {
	t.Helper()
	cmd := exec.Command(helm, append([]string{"template", "uias", chartDir(t), "--kube-version", kubeVersion}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm template %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(&stdout)
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template output: %v", err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs, nil
}

// get walks m along keys (string: map key, int: list index); nil when absent.
func get(m any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			mm, ok := m.(map[string]any)
			if !ok {
				return nil
			}
			m = mm[k]
		case int:
			l, ok := m.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			m = l[k]
		}
	}
	return m
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func list(v any) []any { l, _ := v.([]any); return l }

// byComponent returns the objects of kind, keyed by component.
func byComponent(t *testing.T, docs []map[string]any, kind string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, d := range docs {
		if d["kind"] != kind {
			continue
		}
		c := str(get(d, "metadata", "labels", "app.kubernetes.io/component"))
		if _, dup := out[c]; dup {
			t.Errorf("two %s objects for component %q", kind, c)
		}
		out[c] = d
	}
	return out
}

// valueSets are the value sets the chart is tested with: the minimal and the
// full values of charts/uias/ci, the full one with every registered
// component enabled.
func valueSets(t *testing.T) map[string][]string {
	ci := filepath.Join(chartDir(t), "ci")
	full := []string{"-f", filepath.Join(ci, "full-values.yaml")}
	for _, m := range app.Registry().Modules() {
		full = append(full, "--set", "components."+m.Name+".enabled=true")
	}
	return map[string][]string{
		"minimal": {"-f", filepath.Join(ci, "minimal-values.yaml")},
		"full":    full,
		// A gateway with identity alone behind it.
		"identity-only": {"-f", filepath.Join(ci, "minimal-values.yaml"),
			"--set", "components.ticket.enabled=false,components.authz.enabled=false,components.audit.enabled=false"},
	}
}

// componentDefs reads what the chart declares each component needs
// (uias.componentDefs in templates/_helpers.tpl).
func componentDefs(t *testing.T) map[string]map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir(t), "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)define "uias\.componentDefs" -}}\n(.*?)\{\{- end`).FindSubmatch(b)
	if m == nil {
		t.Fatal(`templates/_helpers.tpl has no "uias.componentDefs" block`)
	}
	defs := map[string]map[string]bool{}
	if err := yaml.Unmarshal(m[1], &defs); err != nil {
		t.Fatalf("uias.componentDefs: %v", err)
	}
	return defs
}

// TestChartHasEveryComponent: every component registered in cmd/uias/app
// Registry() has its place in the chart (values, the component list, what
// it needs, the values schema) and is enabled by default, and the chart
// enables by default nothing the binary does not run. A component added to
// Registry() without its chart entry fails here.
func TestChartHasEveryComponent(t *testing.T) {
	dir := chartDir(t)
	var values struct {
		Components map[string]struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"components"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	var schema struct {
		Properties struct {
			Components struct {
				Required   []string       `yaml:"required"`
				Properties map[string]any `yaml:"properties"`
			} `yaml:"components"`
		} `yaml:"properties"`
	}
	b, err = os.ReadFile(filepath.Join(dir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	helpers, err := os.ReadFile(filepath.Join(dir, "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	om := regexp.MustCompile(`define "uias\.componentOrder" -}}\n(.*)\n`).FindSubmatch(helpers)
	if om == nil {
		t.Fatal(`templates/_helpers.tpl has no "uias.componentOrder" line`)
	}
	order := strings.Fields(string(om[1]))
	defs := componentDefs(t)

	reg := app.Registry()
	fix := "charts/uias needs: components.%[1]s in values.yaml (copy another component's entry), %[1]s in uias.componentOrder " +
		"and uias.componentDefs (templates/_helpers.tpl) and in components of values.schema.json"
	for _, m := range reg.Modules() {
		v, ok := values.Components[m.Name]
		switch {
		case !ok:
			t.Errorf("component %q is registered in cmd/uias/app Registry() but has no components.%s in charts/uias/values.yaml; "+fix, m.Name, m.Name)
			continue
		case !v.Enabled:
			t.Errorf("component %q is registered in cmd/uias/app Registry() but charts/uias/values.yaml has components.%s.enabled: false; "+
				"enable it by default now that the binary runs it", m.Name, m.Name)
		}
		if !slices.Contains(order, m.Name) {
			t.Errorf("component %q is not in uias.componentOrder (charts/uias/templates/_helpers.tpl): the chart renders nothing for it", m.Name)
		}
		if _, ok := schema.Properties.Components.Properties[m.Name]; !ok || !slices.Contains(schema.Properties.Components.Required, m.Name) {
			t.Errorf("component %q is missing from components (properties and required) in charts/uias/values.schema.json", m.Name)
		}
		d, ok := defs[m.Name]
		if !ok {
			t.Errorf("component %q is missing from uias.componentDefs (charts/uias/templates/_helpers.tpl)", m.Name)
			continue
		}
		want := map[string]bool{"grpc": !m.Edge, "database": m.SQL, "nats": m.NATS, "edge": m.Edge, "rest": m.REST != nil}
		for k, w := range want {
			if d[k] != w {
				t.Errorf("uias.componentDefs says %s: {%s: %v}, but the module registered in cmd/uias/app has %s %v; fix charts/uias/templates/_helpers.tpl",
					m.Name, k, d[k], map[string]string{"grpc": "Edge false =", "database": "SQL", "nats": "NATS", "edge": "Edge", "rest": "REST routes"}[k], w)
			}
		}
	}
	for name, v := range values.Components {
		if v.Enabled && reg.Lookup(name) == nil {
			t.Errorf("charts/uias/values.yaml enables components.%s by default, but cmd/uias/app Registry() has no %q: "+
				"uias serve --target=%s would refuse to start; keep it enabled: false until the component is registered", name, name, name)
		}
	}
	for _, name := range order {
		if _, ok := values.Components[name]; !ok {
			t.Errorf("uias.componentOrder names %q, which has no components.%s in values.yaml", name, name)
		}
		if _, ok := defs[name]; !ok {
			t.Errorf("uias.componentOrder names %q, which is missing from uias.componentDefs", name)
		}
	}
}

// container is the uias container of a Deployment.
func container(t *testing.T, d map[string]any) map[string]any {
	t.Helper()
	cs := list(get(d, "spec", "template", "spec", "containers"))
	if len(cs) != 1 {
		t.Fatalf("Deployment %s: %d containers, want 1", str(get(d, "metadata", "name")), len(cs))
	}
	c, _ := cs[0].(map[string]any)
	return c
}

// TestChartDeploymentsParse renders the chart and starts nothing: it parses
// each Deployment's arguments and environment with the flag parser of
// `uias serve`, validates the result as the process does at start, and
// checks it against the component's module (target, listeners, etcd, NATS,
// database, probes).
func TestChartDeploymentsParse(t *testing.T) {
	helm := helmBin(t)
	reg := app.Registry()
	allowedEnv := map[string]bool{"POD_IP": true}
	for _, n := range append(config.EnvVars(reg.Sections()...), ctlEnv...) {
		allowedEnv[n] = true
	}
	for name, args := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			docs, err := render(t, helm, args...)
			if err != nil {
				t.Fatal(err)
			}
			configMaps := map[string]map[string]any{}
			for _, d := range docs {
				if d["kind"] == "ConfigMap" {
					configMaps[str(get(d, "metadata", "name"))] = d
				}
			}
			deps := byComponent(t, docs, "Deployment")
			if len(deps) == 0 {
				t.Fatal("no Deployment rendered")
			}
			var behind []string // deployed components with REST routes
			var edge *config.Config
			for comp, d := range deps {
				t.Run(comp, func(t *testing.T) {
					m := reg.Lookup(comp)
					if m == nil {
						t.Fatalf("the chart renders component %q, which cmd/uias/app Registry() does not have", comp)
					}
					cfg := checkDeployment(t, d, m, reg, configMaps, allowedEnv)
					if m.REST != nil {
						behind = append(behind, comp)
					}
					if m.Edge {
						edge = &cfg
					}
				})
			}
			// The gateway's /readyz waits for exactly the components
			// deployed behind it.
			if edge != nil {
				gw, _ := edge.Section(gateway.Name).(*gateway.Config)
				slices.Sort(behind)
				got := slices.Sorted(slices.Values(gw.Backends))
				if !slices.Equal(got, behind) {
					t.Errorf("gateway.backends %v, want the deployed components with REST routes %v", got, behind)
				}
			}
			if name == "full" {
				for _, m := range reg.Modules() {
					if _, ok := deps[m.Name]; !ok {
						t.Errorf("full values with components.%s.enabled=true render no Deployment for it", m.Name)
					}
				}
			}
		})
	}
}

func checkDeployment(t *testing.T, d map[string]any, m *module.Module, reg *module.Registry,
	configMaps map[string]map[string]any, allowedEnv map[string]bool) config.Config {
	c := container(t, d)
	podSpec := get(d, "spec", "template", "spec")

	mounts := map[string]string{} // mount path -> volume name
	for _, vm := range list(c["volumeMounts"]) {
		mounts[str(get(vm, "mountPath"))] = str(get(vm, "name"))
	}
	volumes := map[string]any{}
	for _, v := range list(get(podSpec, "volumes")) {
		volumes[str(get(v, "name"))] = v
	}
	mounted := func(path string) (string, bool) {
		for mp, vol := range mounts {
			if strings.HasPrefix(path, mp+"/") {
				return vol, true
			}
		}
		return "", false
	}

	// The environment as Kubernetes gives it to the process; secrets are
	// replaced by placeholders.
	env := map[string]string{}
	for _, e := range list(c["env"]) {
		n := str(get(e, "name"))
		if !allowedEnv[n] {
			t.Errorf("env %s is not read by uias serve (config.EnvVars) nor uias ctl: a typo, or a setting that does not exist", n)
		}
		if _, dup := env[n]; dup {
			t.Errorf("env %s is set twice", n)
		}
		_, isSecret := secretEnv[n]
		switch {
		case get(e, "value") != nil:
			if isSecret {
				t.Errorf("env %s holds a secret in clear; it must come from a Secret (valueFrom.secretKeyRef)", n)
			}
			env[n] = str(get(e, "value"))
		case get(e, "valueFrom", "secretKeyRef") != nil:
			if str(get(e, "valueFrom", "secretKeyRef", "name")) == "" || str(get(e, "valueFrom", "secretKeyRef", "key")) == "" {
				t.Errorf("env %s: secretKeyRef without name or key", n)
			}
			if p, ok := secretEnv[n]; ok {
				env[n] = p
			} else {
				env[n] = "placeholder-from-secret"
			}
		case str(get(e, "valueFrom", "fieldRef", "fieldPath")) == "status.podIP":
			env[n] = podIP
		default:
			t.Errorf("env %s: unexpected source %v", n, e)
		}
		if strings.HasSuffix(n, "_FILE") {
			if _, ok := mounted(env[n]); !ok {
				t.Errorf("env %s=%s: no volume is mounted there", n, env[n])
			}
		}
	}

	// Arguments: $(VAR) expanded as the kubelet does; --config pointed at a
	// copy of the rendered ConfigMap.
	var args []string
	for i, a := range list(c["args"]) {
		s := str(a)
		s = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(s, func(ref string) string {
			v, ok := env[ref[2:len(ref)-1]]
			if !ok {
				t.Errorf("argument %d %q refers to %s, which the container's env does not define", i, a, ref)
				return ref
			}
			return v
		})
		if p, ok := strings.CutPrefix(s, "--config="); ok {
			vol, ok := mounted(p)
			if !ok {
				t.Fatalf("--config=%s: no volume is mounted there", p)
			}
			cmName := str(get(volumes[vol], "configMap", "name"))
			data := str(get(configMaps[cmName], "data", filepath.Base(p)))
			if data == "" {
				t.Fatalf("--config=%s: ConfigMap %q (volume %s) has no %s", p, cmName, vol, filepath.Base(p))
			}
			f := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			s = "--config=" + f
		}
		args = append(args, s)
	}
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("args %q do not start with serve", args)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var stderr bytes.Buffer
	cfg, err := load(args[1:], lookup, &stderr)
	if err != nil {
		t.Fatalf("uias %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("uias %s: invalid configuration:\n%v", strings.Join(args, " "), err)
	}
	if cfg.Target != m.Name {
		t.Errorf("target %q, want %q (the component the Deployment is labelled with)", cfg.Target, m.Name)
	}
	mods, err := reg.Resolve(cfg.Target)
	if err != nil {
		t.Fatal(err)
	}
	var run config.Run
	for _, mm := range mods {
		run.NATS = run.NATS || mm.NATS
		run.HTTP = run.HTTP || mm.Edge
		run.GRPC = run.GRPC || !mm.Edge
	}
	run.Register = run.GRPC
	if err := cfg.ValidateRun(run); err != nil {
		t.Fatalf("uias %s: %v", strings.Join(args, " "), err)
	}

	// What the module needs from the platform is configured.
	if cfg.Discovery != config.DiscoveryEtcd || len(cfg.Etcd.Endpoints) == 0 {
		t.Errorf("discovery %q with %d etcd endpoints, want etcd", cfg.Discovery, len(cfg.Etcd.Endpoints))
	}
	if m.SQL && (cfg.DB.Driver != config.DriverPostgres || cfg.DB.DSN == "") {
		t.Errorf("the component keeps data in SQL: want db.driver postgres with a DSN, got %q", cfg.DB.Driver)
	}
	if m.NATS && cfg.NATS.URL == "" {
		t.Error("the component uses NATS but nats.url is empty")
	}
	ports := map[string]int{}
	for _, p := range list(c["ports"]) {
		n, _ := strconv.Atoi(str(get(p, "containerPort")))
		ports[str(get(p, "name"))] = n
	}
	portOf := func(addr string) int {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%q: %v", addr, err)
		}
		n, _ := strconv.Atoi(p)
		return n
	}
	if !m.Edge {
		if ports["grpc"] == 0 || ports["grpc"] != portOf(cfg.GRPCAddr) {
			t.Errorf("container port grpc %d, but grpc_addr is %q", ports["grpc"], cfg.GRPCAddr)
		}
		if host, _, _ := net.SplitHostPort(cfg.AdvertiseAddr); host != podIP || portOf(cfg.AdvertiseAddr) != portOf(cfg.GRPCAddr) {
			t.Errorf("advertise_addr %q, want the pod address and the gRPC port", cfg.AdvertiseAddr)
		}
	} else if _, ok := ports["grpc"]; ok {
		t.Error("the edge serves no gRPC, but the container declares a grpc port")
	}
	if ports["http"] == 0 || ports["http"] != portOf(cfg.HTTPAddr) {
		t.Errorf("container port http %d, but http_addr is %q", ports["http"], cfg.HTTPAddr)
	}
	if on, _ := cfg.Metrics.Enabled.On(false); !on {
		t.Error("metrics.enabled: /metrics is off on the pod address")
	}

	// Probes point at what the process serves.
	tls := cfg.TLS.CertFile != ""
	for _, probe := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
		p := c[probe]
		if p == nil {
			t.Errorf("no %s", probe)
			continue
		}
		switch {
		case get(p, "grpc") != nil:
			if m.Edge || tls {
				t.Errorf("%s: gRPC probe on a process that serves no plaintext gRPC (edge %v, TLS %v)", probe, m.Edge, tls)
			}
			if n, _ := strconv.Atoi(str(get(p, "grpc", "port"))); n != ports["grpc"] {
				t.Errorf("%s: gRPC probe on port %d, gRPC listens on %d", probe, n, ports["grpc"])
			}
		case get(p, "httpGet") != nil:
			path := str(get(p, "httpGet", "path"))
			if path != "/healthz" && path != "/readyz" {
				t.Errorf("%s: HTTP probe on %s, which uias does not serve as a probe", probe, path)
			}
			if probe == "livenessProbe" && path != "/healthz" {
				t.Errorf("livenessProbe on %s: liveness must not follow storage or backends (use /healthz)", path)
			}
			if str(get(p, "httpGet", "port")) != "http" {
				t.Errorf("%s: HTTP probe on port %v, want http", probe, get(p, "httpGet", "port"))
			}
			if want := map[bool]string{true: "HTTPS", false: "HTTP"}[tls]; str(get(p, "httpGet", "scheme")) != want {
				t.Errorf("%s: scheme %v, the listener serves %s", probe, get(p, "httpGet", "scheme"), want)
			}
		default:
			t.Errorf("%s: neither gRPC nor HTTP", probe)
		}
	}
	if probe := c["readinessProbe"]; get(probe, "httpGet") != nil && str(get(probe, "httpGet", "path")) != "/readyz" {
		t.Errorf("readinessProbe on %v, want /readyz", get(probe, "httpGet", "path"))
	}

	// A command line the parser refuses is refused here too (the check
	// above is not vacuous).
	if _, err := load(append(slices.Clone(args[1:]), "--no-such-flag=1"), lookup, io.Discard); err == nil {
		t.Error("the serve parser accepted --no-such-flag")
	}
	return cfg
}

// TestChartSecurity checks the security and availability settings of every
// rendered component: security contexts, draining, PDB, HPA, NetworkPolicy,
// Services.
func TestChartSecurity(t *testing.T) {
	helm := helmBin(t)
	for name, args := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			docs, err := render(t, helm, args...)
			if err != nil {
				t.Fatal(err)
			}
			deps := byComponent(t, docs, "Deployment")
			pdbs := byComponent(t, docs, "PodDisruptionBudget")
			hpas := byComponent(t, docs, "HorizontalPodAutoscaler")
			nps := byComponent(t, docs, "NetworkPolicy")
			svcs := byComponent(t, docs, "Service")
			if _, ok := hpas["identity"]; !ok {
				t.Error("no HorizontalPodAutoscaler for identity")
			} else if str(get(hpas["identity"], "spec", "metrics", 0, "resource", "name")) != "cpu" {
				t.Errorf("identity's HPA scales on %v, want cpu", get(hpas["identity"], "spec", "metrics"))
			}
			for comp, d := range deps {
				pod := get(d, "spec", "template", "spec")
				c := container(t, d)
				for _, chk := range []struct {
					what string
					got  any
					want any
				}{
					{"pod runAsNonRoot", get(pod, "securityContext", "runAsNonRoot"), true},
					{"pod seccompProfile", get(pod, "securityContext", "seccompProfile", "type"), "RuntimeDefault"},
					{"automountServiceAccountToken", get(pod, "automountServiceAccountToken"), false},
					{"container runAsNonRoot", get(c, "securityContext", "runAsNonRoot"), true},
					{"allowPrivilegeEscalation", get(c, "securityContext", "allowPrivilegeEscalation"), false},
					{"readOnlyRootFilesystem", get(c, "securityContext", "readOnlyRootFilesystem"), true},
					{"privileged", get(c, "securityContext", "privileged"), false},
					{"capabilities.drop", str(get(c, "securityContext", "capabilities", "drop")), "[ALL]"},
				} {
					if chk.got != chk.want {
						t.Errorf("%s: %s is %v, want %v", comp, chk.what, chk.got, chk.want)
					}
				}
				if uid, _ := get(pod, "securityContext", "runAsUser").(int); uid == 0 {
					t.Errorf("%s: runAsUser %v, want a non-root uid", comp, get(pod, "securityContext", "runAsUser"))
				}
				pre, _ := get(c, "lifecycle", "preStop", "sleep", "seconds").(int)
				grace, _ := get(pod, "terminationGracePeriodSeconds").(int)
				if pre <= 0 {
					t.Errorf("%s: no preStop sleep (endpoints must drop the pod before SIGTERM)", comp)
				}
				if grace <= pre+15 {
					t.Errorf("%s: terminationGracePeriodSeconds %d does not cover preStop %d s + the 15 s shutdown", comp, grace, pre)
				}
				if _, ok := pdbs[comp]; !ok {
					t.Errorf("%s: no PodDisruptionBudget", comp)
				}
				svcPorts := map[string]bool{}
				for _, p := range list(get(svcs[comp], "spec", "ports")) {
					svcPorts[str(get(p, "name"))] = true
				}
				if !svcPorts["http"] || (comp != "gateway" && !svcPorts["grpc"]) {
					t.Errorf("%s: Service ports %v, want grpc and http (http only on the gateway)", comp, svcPorts)
				}
				np, ok := nps[comp]
				if !ok {
					t.Errorf("%s: no NetworkPolicy", comp)
					continue
				}
				rules := list(get(np, "spec", "ingress"))
				if len(rules) == 0 {
					t.Errorf("%s: NetworkPolicy admits nothing", comp)
				}
				for i, r := range rules {
					port := str(get(r, "ports", 0, "port"))
					from := list(get(r, "from"))
					switch {
					case comp == "gateway":
						if port != "http" {
							t.Errorf("gateway NetworkPolicy rule %d opens port %s, want http only", i, port)
						}
					case port == "grpc":
						if len(from) != 1 || get(from[0], "podSelector", "matchLabels", "app.kubernetes.io/instance") != "uias" ||
							get(from[0], "namespaceSelector") != nil || get(from[0], "ipBlock") != nil {
							t.Errorf("%s: gRPC is open to %v, want the pods of this release only", comp, from)
						}
					case port == "http":
						if len(from) == 0 {
							t.Errorf("%s: HTTP (/metrics) is open to everyone", comp)
						}
					default:
						t.Errorf("%s: NetworkPolicy rule %d opens port %q", comp, i, port)
					}
				}
			}
		})
	}
}

// TestChartSchemaRejects: values.schema.json and the chart's own checks
// refuse wrong values with a message that names the value.
func TestChartSchemaRejects(t *testing.T) {
	helm := helmBin(t)
	minimal := filepath.Join(chartDir(t), "ci", "minimal-values.yaml")
	if _, err := render(t, helm, "-f", minimal); err != nil {
		t.Fatalf("minimal values: %v", err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"negative replicas", []string{"--set", "components.identity.replicas=-1"},
			[]string{"/components/identity/replicas", "minimum"}},
		{"replicas as text", []string{"--set-string", "components.gateway.replicas=two"},
			[]string{"/components/gateway/replicas", "want integer"}},
		{"misspelt key", []string{"--set", "components.identity.replica=3"},
			[]string{"/components/identity", "replica"}},
		{"unknown component", []string{"--set", "components.billing.enabled=true"},
			[]string{"/components", "billing"}},
		{"log level", []string{"--set", "log.level=verbose"}, []string{"/log/level"}},
		{"sqlite", []string{"--set", "database.driver=sqlite"}, []string{"/database/driver"}},
		{"writable root filesystem", []string{"--set", "securityContext.readOnlyRootFilesystem=false"},
			[]string{"/securityContext/readOnlyRootFilesystem"}},
		{"privilege escalation", []string{"--set", "securityContext.allowPrivilegeEscalation=true"},
			[]string{"/securityContext/allowPrivilegeEscalation"}},
		{"root", []string{"--set", "podSecurityContext.runAsNonRoot=false"},
			[]string{"/podSecurityContext/runAsNonRoot"}},
		{"env that is not UIAS_", []string{"--set", "components.identity.env[0].name=PATH", "--set", "components.identity.env[0].value=/x"},
			[]string{"/components/identity/env/0/name"}},
		{"bad digest", []string{"--set", "image.digest=sha256:xyz"}, []string{"/image/digest"}},
		{"HPA target above 100", []string{"--set", "components.identity.autoscaling.targetCPUUtilizationPercentage=150"},
			[]string{"/components/identity/autoscaling/targetCPUUtilizationPercentage"}},
		{"two NATS credentials", []string{"--set", "components.identity.natsAuth.user=identity",
			"--set", "components.identity.natsAuth.passwordSecret.name=n", "--set", "components.identity.natsAuth.passwordSecret.key=p",
			"--set", "components.identity.natsAuth.nkeySeedSecret.name=n", "--set", "components.identity.natsAuth.nkeySeedSecret.key=k"},
			[]string{"/components/identity/natsAuth"}},
		{"NATS user without password", []string{"--set", "components.identity.natsAuth.user=identity"},
			[]string{"/components/identity/natsAuth"}},
		{"trusted proxy not a CIDR", []string{"--set", "trustedProxies[0]=10.0.0.1"}, []string{"/trustedProxies/0"}},
		{"etcd endpoints removed", []string{"--set", "etcd.endpoints=null"}, []string{"/etcd", "missing property 'endpoints'"}},
		{"no etcd endpoint", []string{"-f", "etcd: {endpoints: []}"}, []string{"etcd.endpoints is required"}},
		{"no NATS", []string{"--set", "nats.url="}, []string{"nats.url is required"}},
		{"no DSN", []string{"--set", "database.dsnSecret.name="}, []string{"database.dsnSecret.name is required"}},
		{"no key ring", []string{"--set", "secrets.keyRing.name="}, []string{"secrets.keyRing.name is required"}},
		{"nothing enabled", []string{"--set", "components.identity.enabled=false", "--set", "components.ticket.enabled=false",
			"--set", "components.authz.enabled=false", "--set", "components.audit.enabled=false",
			"--set", "components.sync.enabled=false", "--set", "components.gateway.enabled=false"},
			[]string{"no component is enabled"}},
		{"grace shorter than draining", []string{"--set", "components.gateway.terminationGracePeriodSeconds=20"},
			[]string{"components.gateway.terminationGracePeriodSeconds (20) must be more than preStopSeconds (5) + 15 s"}},
		{"HPA min above max", []string{"--set", "components.identity.autoscaling.minReplicas=5", "--set", "components.identity.autoscaling.maxReplicas=3"},
			[]string{"components.identity.autoscaling.minReplicas (5) is more than maxReplicas (3)"}},
		{"both PDB bounds", []string{"--set", "components.identity.pdb.minAvailable=1"},
			[]string{"components.identity.pdb: set minAvailable or maxUnavailable, not both"}},
		{"secret mounted outside /etc/uias", []string{"--set", "components.identity.secretMounts[0].secret=s",
			"--set", "components.identity.secretMounts[0].mountPath=/var/run/secrets"}, []string{"/components/identity/secretMounts/0/mountPath"}},
		{"no TLS, plaintext not allowed", []string{"--set", "tls.allowPlaintext=false"},
			[]string{"tls.secretName is required", "tls.allowPlaintext=true"}},
		{"client certificates without TLS", []string{"--set", "tls.verifyClients=true"}, []string{"tls.verifyClients needs tls.secretName"}},
		{"people's CAs without TLS", []string{"--set", "tls.peopleCASecret=people-ca"}, []string{"tls.peopleCASecret needs tls.secretName"}},
		{"revocation lists without client certificates", []string{"--set", "tls.secretName=uias-tls", "--set", "tls.crlSecret=uias-crl"},
			[]string{"tls.crlSecret needs tls.verifyClients or tls.peopleCASecret"}},
		{"one key for both first passwords", []string{"--set", "secrets.bootstrapPassword.name=uias-bootstrap",
			"--set", "secrets.bootstrapAuditorPassword.name=uias-bootstrap", "--set", "secrets.bootstrapAuditorPassword.key=password"},
			[]string{"secrets.bootstrapAuditorPassword names the same Secret key as secrets.bootstrapPassword"}},
		{"auditor password key empty", []string{"--set", "secrets.bootstrapAuditorPassword.key="},
			[]string{"/secrets/bootstrapAuditorPassword/key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := slices.Clone(tc.args)
			for i := 1; i < len(args); i++ {
				if args[i-1] == "-f" { // inline values: into a file
					f := filepath.Join(t.TempDir(), "values.yaml")
					if err := os.WriteFile(f, []byte(args[i]), 0o600); err != nil {
						t.Fatal(err)
					}
					args[i] = f
				}
			}
			_, err := render(t, helm, append([]string{"-f", minimal}, args...)...)
			if err == nil {
				t.Fatalf("helm template accepted %v", tc.args)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// The audit component's archive directory (audit.archive_dir) is a volume
// of its own: the PersistentVolumeClaim auditArchive.existingClaim when set,
// else a sized emptyDir (NOTES warns); the process is told where it is, and
// no other component mounts it.
func TestChartAuditArchive(t *testing.T) {
	helm := helmBin(t)
	minimal := filepath.Join(chartDir(t), "ci", "minimal-values.yaml")
	for _, tc := range []struct {
		name            string
		args            []string
		claim, emptyDir string
		path            string
	}{
		{"claim", []string{"--set", "auditArchive.existingClaim=uias-audit-archive", "--set", "auditArchive.mountPath=/archive"},
			"uias-audit-archive", "", "/archive"},
		{"no claim", nil, "", "1Gi", "/var/lib/uias-audit-archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := render(t, helm, append([]string{"-f", minimal}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			deps := byComponent(t, docs, "Deployment")
			if deps["audit"] == nil {
				t.Fatal("no audit Deployment")
			}
			for comp, d := range deps {
				var vol map[string]any
				for _, v := range list(get(d, "spec", "template", "spec", "volumes")) {
					if get(v, "name") == "audit-archive" {
						vol, _ = v.(map[string]any)
					}
				}
				c := container(t, d)
				mount := ""
				for _, m := range list(get(c, "volumeMounts")) {
					if get(m, "name") == "audit-archive" {
						mount = str(get(m, "mountPath"))
						if get(m, "readOnly") == true {
							t.Errorf("%s: the archive directory is mounted read-only", comp)
						}
					}
				}
				env := ""
				for _, e := range list(get(c, "env")) {
					if get(e, "name") == "UIAS_AUDIT_ARCHIVE_DIR" {
						env = str(get(e, "value"))
					}
				}
				if comp != "audit" {
					if vol != nil || mount != "" || env != "" {
						t.Errorf("%s mounts the audit archive (volume %v, mount %q, env %q)", comp, vol, mount, env)
					}
					continue
				}
				if mount != tc.path || env != tc.path {
					t.Errorf("audit: archive mounted at %q, UIAS_AUDIT_ARCHIVE_DIR %q, want both %q", mount, env, tc.path)
				}
				if got := str(get(vol, "persistentVolumeClaim", "claimName")); got != tc.claim {
					t.Errorf("audit: archive claim %q, want %q (volume %v)", got, tc.claim, vol)
				}
				if got := str(get(vol, "emptyDir", "sizeLimit")); got != tc.emptyDir {
					t.Errorf("audit: archive emptyDir size %q, want %q (volume %v)", got, tc.emptyDir, vol)
				}
			}
		})
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"relative path", []string{"--set", "auditArchive.mountPath=archive"}, "/auditArchive/mountPath"},
		{"over the data directory", []string{"--set", "auditArchive.mountPath=/var/lib/uias"}, "/auditArchive/mountPath"},
		{"claim name", []string{"--set", "auditArchive.existingClaim=Audit_Archive"}, "/auditArchive/existingClaim"},
		{"misspelt key", []string{"--set", "auditArchive.claim=x"}, "/auditArchive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, helm, append([]string{"-f", minimal}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template %v: %v, want a refusal naming %s", tc.args, err, tc.want)
			}
		})
	}
}

// The first start's two passwords (the system administrator's and the
// security auditor's) come from Secret keys, to identity only, and only
// when set: without them identity generates each and prints it once.
func TestChartBootstrapPasswords(t *testing.T) {
	helm := helmBin(t)
	full := filepath.Join(chartDir(t), "ci", "full-values.yaml")
	minimal := filepath.Join(chartDir(t), "ci", "minimal-values.yaml")
	want := map[string][2]string{
		"UIAS_BOOTSTRAP_PASSWORD":         {"uias-bootstrap", "password"},
		"UIAS_BOOTSTRAP_AUDITOR_PASSWORD": {"uias-bootstrap", "auditor-password"},
	}
	for name, args := range map[string][]string{
		"full":         {"-f", full},
		"minimal":      {"-f", minimal},
		"auditor only": {"-f", minimal, "--set", "secrets.bootstrapAuditorPassword.name=auditor-secret"},
	} {
		t.Run(name, func(t *testing.T) {
			docs, err := render(t, helm, args...)
			if err != nil {
				t.Fatal(err)
			}
			for comp, d := range byComponent(t, docs, "Deployment") {
				got := map[string][2]string{}
				for _, e := range list(container(t, d)["env"]) {
					n := str(get(e, "name"))
					if _, ok := want[n]; ok {
						got[n] = [2]string{str(get(e, "valueFrom", "secretKeyRef", "name")), str(get(e, "valueFrom", "secretKeyRef", "key"))}
					}
				}
				var exp map[string][2]string
				switch {
				case comp != "identity":
				case name == "full":
					exp = want
				case name == "auditor only":
					exp = map[string][2]string{"UIAS_BOOTSTRAP_AUDITOR_PASSWORD": {"auditor-secret", "auditor-password"}}
				}
				if len(got) != len(exp) {
					t.Errorf("%s: first-start passwords %v, want %v", comp, got, exp)
				}
				for n, ref := range exp {
					if got[n] != ref {
						t.Errorf("%s: %s from Secret %v, want %v", comp, n, got[n], ref)
					}
				}
			}
		})
	}
}

// tls.peopleCASecret mounts the people's CAs (key ca.crt) and names them
// in UIAS_TLS_PEOPLE_CA_FILE (certificate login at the CAS page), and
// tls.crlSecret the CAs' revocation lists (key crl.pem) in
// UIAS_TLS_CRL_FILE, beside the server's TLS; without them neither
// appears.
func TestChartPeopleCA(t *testing.T) {
	helm := helmBin(t)
	minimal := filepath.Join(chartDir(t), "ci", "minimal-values.yaml")
	for _, f := range []struct{ set, secret, env, volume, dir, file string }{
		{"tls.peopleCASecret", "uias-people-ca", "UIAS_TLS_PEOPLE_CA_FILE", "people-ca", "/etc/uias/people-ca", "ca.crt"},
		{"tls.crlSecret", "uias-crl", "UIAS_TLS_CRL_FILE", "crl", "/etc/uias/crl", "crl.pem"},
	} {
		for _, with := range []bool{true, false} {
			args := []string{"-f", minimal, "--set", "tls.secretName=uias-tls", "--set", "tls.verifyClients=true"}
			if with {
				args = append(args, "--set", f.set+"="+f.secret)
			}
			docs, err := render(t, helm, args...)
			if err != nil {
				t.Fatal(err)
			}
			for comp, d := range byComponent(t, docs, "Deployment") {
				c := container(t, d)
				env, mount, secret := "", "", ""
				for _, e := range list(get(c, "env")) {
					if get(e, "name") == f.env {
						env = str(get(e, "value"))
					}
				}
				for _, m := range list(get(c, "volumeMounts")) {
					if get(m, "name") == f.volume {
						mount = str(get(m, "mountPath"))
					}
				}
				for _, v := range list(get(d, "spec", "template", "spec", "volumes")) {
					if get(v, "name") == f.volume {
						secret = str(get(v, "secret", "secretName"))
					}
				}
				if with && (env != f.dir+"/"+f.file || mount != f.dir || secret != f.secret) {
					t.Errorf("%s, %s: env %q, mount %q, secret %q", f.set, comp, env, mount, secret)
				}
				if !with && (env != "" || mount != "" || secret != "") {
					t.Errorf("%s without %s: env %q, mount %q, secret %q", comp, f.set, env, mount, secret)
				}
			}
		}
	}
}

// TestChartAlertsNameRealMetrics: the PrometheusRule the chart renders
// (metrics.prometheusRule) alerts on metrics UIAS defines: every metric
// name in its expressions (a histogram's _bucket series by its name) is
// registered somewhere in the code, so a renamed metric cannot leave an
// alert that never fires; the rule carries the operator's extra rules and
// thresholds; without metrics.prometheusRule.enabled there is none.
func TestChartAlertsNameRealMetrics(t *testing.T) {
	helm := helmBin(t)
	docs, err := render(t, helm, valueSets(t)["full"]...)
	if err != nil {
		t.Fatal(err)
	}
	var rule map[string]any
	for _, d := range docs {
		if d["kind"] == "PrometheusRule" {
			rule = d
		}
	}
	if rule == nil {
		t.Fatal("no PrometheusRule with metrics.prometheusRule.enabled")
	}
	var exprs []string
	alerts := map[string]bool{}
	for _, g := range list(get(rule, "spec", "groups")) {
		for _, r := range list(get(g, "rules")) {
			exprs = append(exprs, str(get(r, "expr")))
			alerts[str(get(r, "alert"))] = true
		}
	}
	for _, a := range []string{"UIASComponentDown", "UIASServerErrors", "UIASSlowCalls", "UIASAuditWitnessProblem", "UIASLoginFailuresHigh",
		"UIASAppSuccessLow", "UIASAppSlowCalls", "UIASUniquenessQuestionsRefused"} {
		if !alerts[a] {
			t.Errorf("alert %s missing: %v", a, alerts)
		}
	}
	if !strings.Contains(strings.Join(exprs, "\n"), "> 0.02") {
		t.Errorf("metrics.prometheusRule.errorRatio not applied:\n%s", strings.Join(exprs, "\n"))
	}
	if !strings.Contains(strings.Join(exprs, "\n"), "< 0.85") {
		t.Errorf("metrics.prometheusRule.appSuccessRatio not applied:\n%s", strings.Join(exprs, "\n"))
	}
	var src strings.Builder
	root := repoRoot(t)
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".bin" || d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "gen") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			src.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code := src.String()
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\b(uias_[a-z0-9_]+|grpc_server_[a-z_]+)\b`).FindAllString(strings.Join(exprs, "\n"), -1) {
		name := strings.TrimSuffix(m, "_bucket")
		if seen[name] {
			continue
		}
		seen[name] = true
		if !strings.Contains(code, `"`+name+`"`) {
			t.Errorf("the alerts use %s, which no code registers", m)
		}
	}
	if len(seen) < 8 {
		t.Errorf("only %d metrics found in the alerts: %v", len(seen), seen)
	}
	minimal, err := render(t, helm, valueSets(t)["minimal"]...)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range minimal {
		if d["kind"] == "PrometheusRule" {
			t.Fatal("a PrometheusRule without metrics.prometheusRule.enabled")
		}
	}
}

// certChallenge.caSecret and certChallenge.crlSecret mount the challenge
// sign-in's people's CAs and revocation lists in the identity pods only,
// named in UIAS_CERT_CHALLENGE_CA_FILE and UIAS_CERT_CHALLENGE_CRL_FILE,
// also without server TLS (behind a TLS-terminating balancer; sec29a H1,
// I2).
func TestChartCertChallenge(t *testing.T) {
	helm := helmBin(t)
	minimal := filepath.Join(chartDir(t), "ci", "minimal-values.yaml")
	for _, f := range []struct{ set, secret, env, volume, dir, file string }{
		{"certChallenge.caSecret", "uias-usb-ca", "UIAS_CERT_CHALLENGE_CA_FILE", "challenge-ca", "/etc/uias/challenge-ca", "ca.crt"},
		{"certChallenge.crlSecret", "uias-usb-crl", "UIAS_CERT_CHALLENGE_CRL_FILE", "challenge-crl", "/etc/uias/challenge-crl", "crl.pem"},
	} {
		for _, with := range []bool{true, false} {
			args := []string{"-f", minimal, "--set", "tls.secretName=", "--set", "tls.allowPlaintext=true"}
			if with {
				args = append(args, "--set", f.set+"="+f.secret)
			}
			docs, err := render(t, helm, args...)
			if err != nil {
				t.Fatal(err)
			}
			for comp, d := range byComponent(t, docs, "Deployment") {
				c := container(t, d)
				env, mount, secret := "", "", ""
				for _, e := range list(get(c, "env")) {
					if get(e, "name") == f.env {
						env = str(get(e, "value"))
					}
				}
				for _, m := range list(get(c, "volumeMounts")) {
					if get(m, "name") == f.volume {
						mount = str(get(m, "mountPath"))
					}
				}
				for _, v := range list(get(d, "spec", "template", "spec", "volumes")) {
					if get(v, "name") == f.volume {
						secret = str(get(v, "secret", "secretName"))
					}
				}
				if with && comp == "identity" && (env != f.dir+"/"+f.file || mount != f.dir || secret != f.secret) {
					t.Errorf("%s, %s: env %q, mount %q, secret %q", f.set, comp, env, mount, secret)
				}
				if (!with || comp != "identity") && (env != "" || mount != "" || secret != "") {
					t.Errorf("%s (%s set: %v): env %q, mount %q, secret %q", comp, f.set, with, env, mount, secret)
				}
			}
		}
	}
	if _, err := render(t, helm, "-f", minimal, "--set", "certChallenge.caSecret=Not_A_Name"); err == nil {
		t.Error("a Secret name the schema should refuse was accepted")
	}
}

// TestChartServicesClosedByDefault: the chart closes newly registered
// services by default (ticket.services_default_access: linked, ADR 0037)
// in the ticket component's configuration.
func TestChartServicesClosedByDefault(t *testing.T) {
	helm := helmBin(t)
	docs, err := render(t, helm, "-f", filepath.Join(chartDir(t), "ci", "minimal-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range docs {
		if d["kind"] != "ConfigMap" || !strings.Contains(str(get(d, "metadata", "name")), "ticket") {
			continue
		}
		data, _ := get(d, "data").(map[string]any)
		for _, v := range data {
			if strings.Contains(str(v), "services_default_access: linked") {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("no ticket ConfigMap sets services_default_access: linked")
	}
}
