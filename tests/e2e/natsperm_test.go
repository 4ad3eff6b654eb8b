package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/caller/natsnonce"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/uniqpeer"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// deployNATSConfig is the NATS server configuration operators deploy.
const deployNATSConfig = "../../deploy/nats/nats-server.conf"

// permNATS is a NATS server started from deployNATSConfig, with the
// settings of its setup user and of each component's user.
type permNATS struct {
	url      string
	server   *server.Server
	setup    config.NATS
	identity config.NATS
	ticket   config.NATS
	audit    config.NATS
	sync     config.NATS
	authz    config.NATS
	siem     config.NATS
}

// startPermNATS starts a NATS server from the deployed configuration on a
// random loopback port: the secrets it reads from the environment are a
// fresh setup password and a fresh NKEY pair per component (its seed in a
// file, as the component's process gets it).
func startPermNATS(t *testing.T, dir string) *permNATS {
	t.Helper()
	pwFile := filepath.Join(dir, "setup-password")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte("setup-Secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// user makes component's NKEY pair: the public key to the server's
	// environment, the seed to a file.
	user := func(component string) string {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		seed, _ := kp.Seed()
		seedFile := filepath.Join(dir, component+".nk")
		if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("UIAS_NATS_"+strings.ToUpper(component)+"_NKEY", pub)
		return seedFile
	}
	seeds := map[string]string{}
	for _, c := range []string{"identity", "ticket", "audit", "sync", "authz", "siem"} {
		seeds[c] = user(c)
	}
	t.Setenv("UIAS_NATS_SETUP_PASSWORD", "setup-Secret-1")
	opts, err := server.ProcessConfigFile(deployNATSConfig)
	if err != nil {
		t.Fatalf("deploy NATS config: %v", err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	ns, err := events.StartNATS(filepath.Join(dir, "store"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	p := &permNATS{url: ns.ClientURL(), server: ns}
	p.setup = config.NATS{URL: p.url, User: "uias-setup", PasswordFile: pwFile}
	nk := func(c string) config.NATS { return config.NATS{URL: p.url, NKeySeedFile: seeds[c]} }
	p.identity, p.ticket, p.audit, p.sync, p.authz = nk("identity"), nk("ticket"), nk("audit"), nk("sync"), nk("authz")
	p.siem = nk("siem")
	return p
}

// connect connects as the client name with settings n, recording the
// permission violations the server reports.
func (p *permNATS) connect(t *testing.T, n config.NATS, name string) (*nats.Conn, *violations) {
	t.Helper()
	opts, err := module.NATSOptions(n, name)
	if err != nil {
		t.Fatal(err)
	}
	v := &violations{}
	nc, err := nats.Connect(n.URL, append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { v.add(err) }))...)
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc, v
}

type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) add(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

// has reports whether the server refused an operation on subject.
func (v *violations) has(subject string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.ContainsFunc(v.errs, func(e string) bool {
		return strings.Contains(e, "Permissions Violation") && strings.Contains(e, `"`+subject+`"`)
	})
}

// TestNATSPermissionsOfDeployConfig: against the server configuration
// operators deploy, a client without credentials cannot connect, the setup
// user creates the streams, and the identity component's credentials can
// publish its own events but cannot purge or delete the AUDIT stream, delete
// a record, edit a stream or forge another component's records.
func TestNATSPermissionsOfDeployConfig(t *testing.T) {
	p := startPermNATS(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if nc, err := nats.Connect(p.url, nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("a client without credentials connected")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("anonymous connect: %v, want an authorization violation", err)
	}
	if _, err := nats.Connect(p.url, nats.UserInfo("uias-setup", "guess"), nats.NoReconnect()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("wrong setup password: %v, want an authorization violation", err)
	}

	idConn, idViol := p.connect(t, p.identity, "identity")
	idJS, _ := jetstream.New(idConn)
	// Before the setup the component cannot create the streams itself, and
	// says what to do.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	sctx, c := short()
	err := events.EnsureStreams(sctx, idJS)
	c()
	if !errors.Is(err, events.ErrStreamsNotAllowed) || !strings.Contains(err.Error(), "uias nats setup") {
		t.Fatalf("identity creating the streams: %v, want ErrStreamsNotAllowed", err)
	}

	setupConn, _ := p.connect(t, p.setup, "setup")
	setupJS, _ := jetstream.New(setupConn)
	if err := events.EnsureStreams(ctx, setupJS); err != nil {
		t.Fatalf("setup: %v", err)
	}
	msgs := func(stream string) uint64 {
		t.Helper()
		s, err := setupJS.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("stream %s info: %v", stream, err)
		}
		return s.CachedInfo().State.Msgs
	}
	// After the setup the identity component finds the streams as they are.
	if err := events.EnsureStreams(ctx, idJS); err != nil {
		t.Fatalf("identity checking the streams after setup: %v", err)
	}

	// Its own events go through, acknowledged by JetStream.
	for _, subj := range []string{"uias.audit.identity.login", "uias.changes.identity.user.created"} {
		if _, err := idJS.Publish(ctx, subj, []byte(`{}`)); err != nil {
			t.Fatalf("identity publishing %s: %v", subj, err)
		}
	}
	if n := msgs(events.StreamAudit); n != 1 {
		t.Fatalf("AUDIT holds %d messages, want 1", n)
	}

	// What an attacker with the component's credentials would try.
	attacks := []struct {
		what    string
		subject string
		run     func(ctx context.Context) error
	}{
		{"purge AUDIT", "$JS.API.STREAM.PURGE.AUDIT", func(ctx context.Context) error {
			s, err := idJS.Stream(ctx, events.StreamAudit)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		}},
		{"delete AUDIT", "$JS.API.STREAM.DELETE.AUDIT", func(ctx context.Context) error { return idJS.DeleteStream(ctx, events.StreamAudit) }},
		{"delete an AUDIT record", "$JS.API.STREAM.MSG.DELETE.AUDIT", func(ctx context.Context) error {
			s, err := idJS.Stream(ctx, events.StreamAudit)
			if err != nil {
				return err
			}
			return s.DeleteMsg(ctx, 1)
		}},
		{"shrink AUDIT to nothing", "$JS.API.STREAM.UPDATE.AUDIT", func(ctx context.Context) error {
			cfg := events.StreamConfigs()[1]
			cfg.MaxMsgs = 1
			cfg.MaxAge = time.Second
			_, err := idJS.UpdateStream(ctx, cfg)
			return err
		}},
		{"create a stream", "$JS.API.STREAM.CREATE.EVIL", func(ctx context.Context) error {
			_, err := idJS.CreateStream(ctx, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}})
			return err
		}},
		{"forge a gateway audit record", "uias.audit.gateway.login", func(ctx context.Context) error {
			_, err := idJS.Publish(ctx, "uias.audit.gateway.login", []byte(`{"result":"ok"}`))
			return err
		}},
	}
	for _, a := range attacks {
		actx, c := short()
		err := a.run(actx)
		c()
		if err == nil {
			t.Errorf("%s with the identity credentials succeeded", a.what)
			continue
		}
		eventually(t, "the server to report the refused "+a.what, func() bool { return idViol.has(a.subject) })
	}
	// The ticket component may follow what it needs of identity's changes:
	// people, and applications (a deleted one loses its CAS services).
	tkConn, tkViol := p.connect(t, p.ticket, "ticket")
	for _, subj := range []string{ticketcomponent.UserChangesSubject, ticketcomponent.AppChangesSubject} {
		tsub, err := tkConn.SubscribeSync(subj)
		if err != nil {
			t.Fatalf("ticket subscribing to %s: %v", subj, err)
		}
		_ = tkConn.Flush()
		pub := strings.Replace(subj, ">", "deleted", 1)
		if _, err := idJS.Publish(ctx, pub, []byte(`{}`)); err != nil {
			t.Fatalf("identity publishing %s: %v", pub, err)
		}
		if _, err := tsub.NextMsg(10 * time.Second); err != nil || tkViol.has(subj) {
			t.Fatalf("ticket did not get %s (%v); refused: %v", pub, err, tkViol.has(subj))
		}
		_ = tsub.Unsubscribe()
	}

	// Reading other components' traffic is refused too.
	sub, err := idConn.SubscribeSync("uias.audit.>")
	if err == nil {
		_ = idConn.Flush()
		eventually(t, "the server to refuse a subscription to every audit record", func() bool { return idViol.has("uias.audit.>") })
		_ = sub.Unsubscribe()
	}

	if n := msgs(events.StreamAudit); n != 1 {
		t.Fatalf("AUDIT holds %d messages after the attacks, want 1 (the identity record)", n)
	}
	if ai, err := setupJS.AccountInfo(ctx); err != nil || ai.Streams != 2 {
		t.Fatalf("account streams: %v %v, want only CHANGES and AUDIT", ai, err)
	}
	s, _ := setupJS.Stream(ctx, events.StreamAudit)
	if cfg := s.CachedInfo().Config; cfg.MaxMsgs == 1 || !events.StreamUpToDate(cfg, events.StreamConfigs()[1]) {
		t.Fatalf("AUDIT configuration changed: %+v", cfg)
	}
	// Not even the setup user may purge or delete.
	setupConn2, setupViol := p.connect(t, p.setup, "setup")
	setupJS2, _ := jetstream.New(setupConn2)
	actx, c := short()
	err = setupJS2.DeleteStream(actx, events.StreamAudit)
	c()
	if err == nil {
		t.Fatal("the setup user deleted AUDIT")
	}
	eventually(t, "the server to refuse the setup user's delete", func() bool { return setupViol.has("$JS.API.STREAM.DELETE.AUDIT") })
	if n := msgs(events.StreamAudit); n != 1 {
		t.Fatalf("AUDIT holds %d messages, want 1", n)
	}

	// Signed requests' nonces: identity makes its bucket and records a
	// nonce once (a second record is a replay), with its own credentials;
	// another bucket it may not make.
	nonces := natsnonce.New(idJS, natsnonce.Options{})
	key := caller.NonceKey("app-1", "nonce-0123456789abcdef")
	if err := nonces.Remember(ctx, key, 10*time.Minute); err != nil {
		t.Fatalf("identity recording a nonce: %v", err)
	}
	if err := natsnonce.New(idJS, natsnonce.Options{}).Remember(ctx, key, 10*time.Minute); !errors.Is(err, caller.ErrNonceSeen) {
		t.Fatalf("identity recording the nonce again (another replica): %v, want ErrNonceSeen", err)
	}
	actx, c = short()
	_, err = idJS.CreateKeyValue(actx, jetstream.KeyValueConfig{Bucket: "OTHER"})
	c()
	if err == nil {
		t.Fatal("identity created another bucket")
	}
	eventually(t, "the server to refuse identity another bucket", func() bool { return idViol.has("$JS.API.STREAM.CREATE.KV_OTHER") })

	// Uniqueness across centres: one identity (level 1's) answers the
	// question another (a level-2 centre's, over the leaf link) asks, and
	// keeps its reservations in its bucket.
	answerConn, answerViol := p.connect(t, p.identity, "identity")
	usub, err := uniqpeer.Serve(answerConn, takenLogins{"pilot": true}, zap.NewNop(), uniqpeer.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = usub.Unsubscribe() }()
	_ = answerConn.Flush()
	v, err := uniqpeer.NewClient(idConn, "l2a").Claim(ctx, identity.UniqueClaim{PersonID: "p1", Login: "pilot"})
	if l2a := uniqpeer.SubjectOf("l2a"); err != nil || !v.LoginTaken || answerViol.has(l2a) || idViol.has(l2a) {
		t.Fatalf("identity asking identity about uniqueness: %+v %v", v, err)
	}
	if h, err := uniqpeer.NewReservations(idJS, time.Minute, 1).Reserve(ctx, "login.x", "p1"); err != nil || h != "p1" {
		t.Fatalf("identity reserving a login name: %q %v", h, err)
	}
	// another instance reads the holder
	if h, err := uniqpeer.NewReservations(idJS, time.Minute, 1).Reserve(ctx, "login.x", "p2"); err != nil || h != "p1" {
		t.Fatalf("identity reading a reservation: %q %v", h, err)
	}
	// Another component may not ask (nor pose as level 1).
	actx, c = short()
	_, err = uniqpeer.NewClient(tkConn, "l2a").Claim(actx, identity.UniqueClaim{PersonID: "p1", Login: "pilot"})
	c()
	if err == nil {
		t.Fatal("ticket asked about uniqueness")
	}
	eventually(t, "the server to refuse ticket the question", func() bool { return tkViol.has(uniqpeer.SubjectOf("l2a")) })
}

// takenLogins answers a uniqueness question from a set of taken logins.
type takenLogins map[string]bool

func (m takenLogins) AnswerPeerClaim(_ context.Context, _ string, c identity.UniqueClaim) (identity.UniqueVerdict, error) {
	return identity.UniqueVerdict{LoginTaken: m[c.Login]}, nil
}

// childEnv marks the child process of TestMonolithNATSOpensNoPort.
const childEnv = "UIAS_E2E_NOPORT_CHILD"

// TestMonolithNATSOpensNoPort: in target all the embedded NATS server takes
// no network connection: the process listens on its gRPC and HTTP
// addresses and nowhere else, so no local process can reach NATS to publish
// a forged record or purge a stream. The process runs as a child so that
// its sockets are its own (Linux: read from /proc).
func TestMonolithNATSOpensNoPort(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		runNoPortChild(t)
		return
	}
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("needs Linux /proc")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMonolithNATSOpensNoPort$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+t.TempDir())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close() // the child stops when its stdin closes
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}()
	var want []int
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
			for _, f := range strings.Fields(rest) {
				port, _ := strconv.Atoi(f[strings.LastIndex(f, ":")+1:])
				want = append(want, port)
			}
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if len(want) != 2 {
		t.Fatalf("child did not report its addresses (%v)", sc.Err())
	}
	got := listeningPorts(t, cmd.Process.Pid)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the process listens on ports %v, want only gRPC and HTTP %v", got, want)
	}
}

// runNoPortChild starts target all, proves NATS works in process (events
// reach the AUDIT stream), prints its listen addresses and waits for stdin
// to close.
func runNoPortChild(t *testing.T) {
	cfg := testConfig(os.Getenv(childEnv))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{Logger: zap.NewNop(), BootstrapPassword: adminPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Stop(context.Background()) }()
	e := &env{t: t, app: a}
	e.dial(a.GRPCAddr())
	e.login()
	nc, err := a.ConnectNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	eventually(t, "the admin login to reach AUDIT through the in-process connection", func() bool {
		return len(streamEventsConn(t, nc, events.StreamAudit, "uias.audit.identity.")) > 0
	})
	fmt.Printf("LISTENING %s %s\n", a.GRPCAddr(), a.HTTPAddr())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// listeningPorts returns the TCP ports process pid listens on, from its
// socket descriptors and /proc/<pid>/net/tcp{,6}.
func listeningPorts(t *testing.T, pid int) []int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var ports []int
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] { // 0A: LISTEN
				continue
			}
			port, err := strconv.ParseUint(fs[1][strings.LastIndex(fs[1], ":")+1:], 16, 16)
			if err == nil {
				ports = append(ports, int(port))
			}
		}
	}
	return ports
}
