package module

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/config"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// secureEtcd starts an etcd that serves clients over TLS only, requires a
// client certificate signed by ca, and has authentication enabled with a
// user "uias" (password pw) allowed to use keys under "uias/" only. It
// returns the client endpoint.
func secureEtcd(t *testing.T, ca *testCA, dir, pw string) string {
	t.Helper()
	certFile, keyFile := ca.issue(t, dir, "etcd", "etcd", 100)
	var (
		e         *embed.Etcd
		clientURL url.URL
		err       error
	)
	for attempt := 0; attempt < 3; attempt++ { // a picked port may be taken meanwhile
		clientURL = url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		cfg := embed.NewConfig()
		cfg.Name, cfg.Dir = "uias", filepath.Join(dir, fmt.Sprintf("etcd%d", attempt))
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peerURL}, []url.URL{peerURL}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: ca.file, ClientCertAuth: true}
		cfg.Logger, cfg.ZapLoggerBuilder = "zap", embed.NewZapLoggerBuilder(zap.NewNop())
		if e, err = embed.StartEtcd(cfg); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("etcd not ready")
	}

	// The operator's setup: root, and a user for UIAS limited to uias/.
	adminCert, adminKey := ca.issue(t, dir, "etcd-admin", "root", 101)
	ec := config.Default()
	ec.Etcd.Endpoints = []string{clientURL.String()}
	ec.Etcd.TLS.CAFile, ec.Etcd.TLS.CertFile, ec.Etcd.TLS.KeyFile = ca.file, adminCert, adminKey
	c, err := EtcdConfig(ec)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := clientv3.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.UserAdd(ctx, "uias", pw); return err },
		func() error { _, err := admin.RoleAdd(ctx, "uias"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "uias", "uias/", clientv3.GetPrefixRangeEnd("uias/"),
				clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserGrantRole(ctx, "uias", "uias"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("etcd setup step %d: %v", i, err)
		}
	}
	return clientURL.String()
}

// putAs writes a key under uias/ with the etcd settings of cfg.
func putAs(cfg config.Config, timeout time.Duration) error {
	c, err := EtcdConfig(cfg)
	if err != nil {
		return err
	}
	c.DialTimeout = timeout
	cli, err := clientv3.New(c)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = cli.Put(ctx, "uias/probe", "x")
	return err
}

// securedNATS starts a NATS server that admits only user "identity" with
// password pw.
func securedNATS(t *testing.T, pw string) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(),
		Users: []*server.User{{Username: "identity", Password: pw}}})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	return ns.ClientURL()
}

// In microservices mode the process reaches etcd over TLS with a client
// certificate and a user whose password comes from a file, and NATS with a
// user whose password comes from a file; the secrets appear in no log and
// no config dump. Whoever lacks one of them is refused.
func TestInfrastructureCredentials(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	const etcdPW, natsPW = "etcd-Pa55 word", "nats-Pa55'word"
	endpoint := secureEtcd(t, ca, dir, etcdPW)
	natsURL := securedNATS(t, natsPW)
	clientCert, clientKey := ca.issue(t, dir, "uias-client", "uias-client", 200)
	etcdPWFile, natsPWFile := filepath.Join(dir, "etcd-pw"), filepath.Join(dir, "nats-pw")
	writeFile(t, etcdPWFile, []byte(etcdPW+"\n"))
	writeFile(t, natsPWFile, []byte(natsPW))

	good := func() config.Config {
		c := config.Default()
		c.Target, c.Discovery = "svc", ""
		c.DataDir = t.TempDir()
		c.GRPCAddr, c.HTTPAddr, c.AdvertiseAddr = "127.0.0.1:0", "", ""
		c.Etcd.Endpoints = []string{endpoint}
		c.Etcd.TLS.CAFile, c.Etcd.TLS.CertFile, c.Etcd.TLS.KeyFile = ca.file, clientCert, clientKey
		c.Etcd.Username, c.Etcd.PasswordFile = "uias", etcdPWFile
		c.NATS.URL, c.NATS.User, c.NATS.PasswordFile = natsURL, "identity", natsPWFile
		c.NATS.Embedded = false
		c.Complete()
		return c
	}

	t.Run("process with every credential", func(t *testing.T) {
		r := &Registry{}
		var nc *nats.Conn
		r.Register(Module{Name: "svc", NATS: true, Init: func(_ context.Context, env *Env) (*Component, error) {
			var err error
			nc, _, err = env.NATS()
			return &Component{Register: func(s grpc.ServiceRegistrar) {
				s.RegisterService(&grpc.ServiceDesc{ServiceName: "uias.test.Svc", HandlerType: (*any)(nil)}, struct{}{})
			}}, err
		}})
		core, logs := observer.New(zapcore.DebugLevel)
		p, err := Start(context.Background(), r, good(), Options{Logger: zap.New(core)})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = p.Stop(context.Background()) }()
		// Registered in etcd (as user uias, over TLS; in the background,
		// the process is ready once it is) ...
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for p.Ready(ctx) != nil && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		resp, err := p.etcd.Get(ctx, "uias/svc", clientv3.WithPrefix())
		if err != nil || resp.Count == 0 {
			t.Fatalf("registration in etcd: %v %v", resp, err)
		}
		// ... and connected to NATS (as user identity).
		if err := nc.FlushTimeout(10 * time.Second); err != nil {
			t.Fatalf("NATS: %v", err)
		}
		if s := fmt.Sprintf("%+v %+v", logs.All(), good().Redacted()); strings.Contains(s, etcdPW) || strings.Contains(s, natsPW) {
			t.Fatal("a password appears in the logs or the redacted config")
		}
	})

	t.Run("etcd refuses", func(t *testing.T) {
		// The control write may take long on a loaded machine (TLS,
		// authentication); a refusal is waited for 1.5 s at most.
		if err := putAs(good(), 20*time.Second); err != nil {
			t.Fatalf("control: %v", err)
		}
		for name, edit := range map[string]func(c *config.Config){
			"no client certificate": func(c *config.Config) { c.Etcd.TLS.CertFile, c.Etcd.TLS.KeyFile = "", "" },
			"no password":           func(c *config.Config) { c.Etcd.Username, c.Etcd.PasswordFile = "", "" },
			"wrong password":        func(c *config.Config) { c.Etcd.Password = "guess" },
			"plaintext": func(c *config.Config) {
				c.Etcd.Endpoints = []string{strings.Replace(endpoint, "https", "http", 1)}
				c.Etcd.TLS.CAFile, c.Etcd.TLS.CertFile, c.Etcd.TLS.KeyFile = "", "", ""
			},
			"untrusted server": func(c *config.Config) { c.Etcd.TLS.CAFile = "" }, // system roots do not know the test CA
		} {
			c := good()
			edit(&c)
			err := putAs(c, 1500*time.Millisecond)
			if err == nil {
				t.Errorf("%s: etcd accepted the write", name)
			}
			t.Logf("%s: %v", name, err)
		}
	})

	t.Run("NATS refuses", func(t *testing.T) {
		for name, edit := range map[string]func(c *config.Config){
			"no credentials": func(c *config.Config) { c.NATS.User, c.NATS.PasswordFile = "", "" },
			"wrong password": func(c *config.Config) { c.NATS.Password = "guess" },
		} {
			c := good()
			edit(&c)
			opts, err := NATSOptions(c.NATS, c.Target)
			if err != nil {
				t.Fatal(err)
			}
			nc, err := nats.Connect(natsURL, opts...)
			if err == nil {
				nc.Close()
				t.Errorf("%s: NATS accepted the connection", name)
			} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Errorf("%s: %v, want an authorization error", name, err)
			}
		}
	})
}
