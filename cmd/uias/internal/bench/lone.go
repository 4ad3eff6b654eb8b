package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/sched"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// ChildEnv is set in the environment of the `uias serve` processes the
// sched phase starts. The uias binary ignores it; a test binary that
// starts the benchmark runs serve.Main when it finds it (see TestMain).
const ChildEnv = "UIAS_BENCH_CHILD"

// schedPolicies are the two halves of the sched phase, in result order.
var schedPolicies = [2]string{sched.PolicyBatch, sched.PolicyInherit}

// loneIdentity is `uias serve --target=identity` run twice, in processes
// of their own, one with identity.sched_policy batch and one with inherit,
// each with its own SQLite data dir, registered in an etcd (started here
// from --etcd-bin, or given by --etcd-endpoints) and publishing to a NATS
// server of their own on loopback, started here (the monolith's embedded
// NATS takes no network connections; this one stands in for the external
// NATS of microservices mode). Only one of them is loaded at a time.
type loneIdentity struct {
	dir   string
	etcd  *exec.Cmd
	nats  *server.Server
	procs [2]*child
}

type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	e    *env          // clients of this process, seeded
}

func startLone(ctx context.Context, o *options, log io.Writer) (_ *loneIdentity, err error) {
	dir, err := os.MkdirTemp("", "uias-bench-lone-*")
	if err != nil {
		return nil, err
	}
	l := &loneIdentity{dir: dir}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	endpoints := o.etcdEndpoints
	if len(endpoints) == 0 {
		if endpoints, err = l.startEtcd(ctx, o.etcdBin, log); err != nil {
			return nil, err
		}
	}
	if l.nats, err = events.StartEmbeddedNATS(filepath.Join(dir, "nats"), "127.0.0.1", -1); err != nil {
		return nil, err
	}
	natsURL := l.nats.ClientURL()
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	for i, policy := range schedPolicies {
		c, err := startChild(ctx, exe, o, policy, filepath.Join(dir, policy), natsURL, endpoints, log)
		if c != nil {
			l.procs[i] = c
		}
		if err != nil {
			return nil, fmt.Errorf("uias serve --target=identity (sched_policy %s): %w", policy, err)
		}
	}
	return l, nil
}

// startEtcd runs bin as a single-member etcd on loopback ports and waits
// until it is healthy.
func (l *loneIdentity) startEtcd(ctx context.Context, bin string, log io.Writer) ([]string, error) {
	client, peer := freePort(), freePort()
	if client == 0 || peer == 0 {
		return nil, errors.New("no free loopback port for etcd")
	}
	cu, pu := fmt.Sprintf("http://127.0.0.1:%d", client), fmt.Sprintf("http://127.0.0.1:%d", peer)
	l.etcd = exec.Command(bin, "--name=bench", "--data-dir="+filepath.Join(l.dir, "etcd"),
		"--listen-client-urls="+cu, "--advertise-client-urls="+cu,
		"--listen-peer-urls="+pu, "--initial-advertise-peer-urls="+pu, "--initial-cluster=bench="+pu,
		"--log-level=error")
	// etcd logs errors on every shutdown: its output is shown only if it
	// does not come up.
	var etcdLog bytes.Buffer
	l.etcd.Stdout, l.etcd.Stderr = &etcdLog, &etcdLog
	if err := l.etcd.Start(); err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	hc := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := hc.Get(cu + "/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return []string{cu}, nil
			}
			err = fmt.Errorf("GET /health: HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = l.etcd.Process.Kill()
			_ = l.etcd.Wait()
			fmt.Fprintf(log, "%s", etcdLog.String())
			return nil, fmt.Errorf("etcd at %s not healthy after 30 s: %w", cu, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startChild starts one `uias serve --target=identity` and seeds it like the
// in-process system (an app, a user with a password linked to it, an admin
// token).
func startChild(ctx context.Context, exe string, o *options, policy, dir, natsURL string, etcd []string, log io.Writer) (*child, error) {
	a := o.env.Argon2
	// Outside target "all" identity needs a key ring made beforehand.
	if _, err := crypto.NewRingFile(filepath.Join(dir, "keyring.json")); err != nil {
		return nil, fmt.Errorf("key ring: %w", err)
	}
	cmd := exec.Command(exe, "serve", "--target=identity", "--grpc-addr=127.0.0.1:0", "--http-addr=",
		"--data-dir="+dir, "--nats-url="+natsURL, "--etcd-endpoints="+strings.Join(etcd, ","),
		"--log-level="+o.env.LogLevel)
	// Nothing of the benchmark's own UIAS_* environment leaks in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "UIAS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Identity runs alone (no authz component): the legacy is_admin rule.
	cmd.Env = append(cmd.Env, ChildEnv+"=1", "UIAS_SCHED_POLICY="+policy, "UIAS_BOOTSTRAP_PASSWORD="+adminPassword, "UIAS_ADMIN_AUTHZ=false",
		fmt.Sprintf("UIAS_ARGON2_MEMORY_KIB=%d", a.MemoryKiB), fmt.Sprintf("UIAS_ARGON2_TIME=%d", a.Time),
		fmt.Sprintf("UIAS_ARGON2_THREADS=%d", a.Threads), fmt.Sprintf("UIAS_HASH_WORKERS=%d", o.env.HashWorkers),
		fmt.Sprintf("UIAS_HASH_QUEUE=%d", o.env.HashQueue), "UIAS_MAX_HASH_WAIT="+o.env.MaxHashWait.String())
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, addr, ok := strings.Cut(sc.Text(), "gRPC listening on "); ok {
				addrc <- strings.TrimSpace(addr)
			}
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-c.done:
		return c, fmt.Errorf("exited at start: %v", cmd.ProcessState)
	case <-time.After(60 * time.Second):
		return c, errors.New("not listening after 60 s")
	case <-ctx.Done():
		return c, ctx.Err()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return c, err
	}
	c.e = &env{conn: conn, auth: identityv1.NewAuthServiceClient(conn), admin: identityv1.NewAdminServiceClient(conn)}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.e.seed(sctx); err != nil {
		return c, err
	}
	return c, nil
}

// threadPolicies counts the scheduling policies of the process's threads
// ("batch", "other", ...), read from /proc.
func (c *child) threadPolicies() map[string]int {
	out := map[string]int{}
	pid := c.cmd.Process.Pid
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return out
	}
	for _, t := range ents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/sched", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.TrimSpace(k) != "policy" {
				continue
			}
			switch n, _ := strconv.Atoi(strings.TrimSpace(v)); n {
			case 0:
				out["other"]++
			case 3:
				out["batch"]++
			default:
				out[strconv.Itoa(n)]++
			}
		}
	}
	return out
}

func (l *loneIdentity) close() {
	for _, c := range l.procs {
		if c == nil {
			continue
		}
		if c.e != nil && c.e.conn != nil {
			_ = c.e.conn.Close()
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	if l.nats != nil {
		l.nats.Shutdown()
		l.nats.WaitForShutdown()
	}
	if l.etcd != nil && l.etcd.Process != nil {
		_ = l.etcd.Process.Signal(syscall.SIGTERM)
		waited := make(chan struct{})
		go func() { _ = l.etcd.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			_ = l.etcd.Process.Kill()
			<-waited
		}
	}
	_ = os.RemoveAll(l.dir)
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// freePort returns a loopback TCP port that was free a moment ago (0 if
// none could be had).
func freePort() int {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer lis.Close()
	return lis.Addr().(*net.TCPAddr).Port
}

// runSched is the sched phase: in alternating slices, each lone identity
// process gets saturating logins (o.authConc closed-loop callers) and
// GetUser calls paced at o.schedRate; it records GetUser latency and login
// throughput of each.
func (e *env) runSched(ctx context.Context, o *options, r *round, log io.Writer) error {
	if o.etcdBin == "" && len(o.etcdEndpoints) == 0 {
		fmt.Fprintln(log, "  sched: skipped (`uias serve --target=identity` needs an etcd: --etcd-bin or --etcd-endpoints)")
		return nil
	}
	// This process is the lone identity's client here, as a caller on
	// another machine would be: its own threads must not wait behind the
	// hashes as SCHED_BATCH threads do. And a process started from a
	// SCHED_BATCH thread starts as SCHED_BATCH: the inherit one must not.
	if allBatch() {
		if _, err := sched.Normal(); err != nil {
			return fmt.Errorf("sched phase: leave SCHED_BATCH: %w", err)
		}
		defer func() { _, _ = sched.Batch() }()
	}
	if e.lone == nil {
		fmt.Fprintln(log, "  sched: starting uias serve --target=identity with sched_policy batch and inherit")
		l, err := startLone(ctx, o, log)
		if err != nil {
			return err
		}
		e.lone = l
		for i, c := range l.procs {
			pol := c.threadPolicies()
			fmt.Fprintf(log, "  sched: %s process %d threads: %v\n", schedPolicies[i], c.cmd.Process.Pid, pol)
			want := map[string]string{sched.PolicyBatch: "batch", sched.PolicyInherit: "other"}[schedPolicies[i]]
			if len(pol) > 0 && pol[want] != sumValues(pol) {
				return fmt.Errorf("sched phase: the %s process does not run %s on all its threads: %v", schedPolicies[i], want, pol)
			}
		}
	}
	var logins [2]*Result
	measure := func(i int) Measure {
		c := e.lone.procs[i]
		return func(w, d time.Duration) *Result {
			done := make(chan *Result)
			go func() { done <- ClosedLoop(ctx, o.authConc, w, d, c.e.callAuthenticate) }()
			get := OpenLoop(ctx, o.schedRate, w, d, c.e.callGetUser)
			logins[i] = logins[i].add(<-done)
			return get
		}
	}
	res := Interleave(ctx, o.slices, o.warmup, o.duration, measure(0), measure(1))
	for i, p := range schedPolicies {
		r.schedGet[i], r.schedLogins[i] = res[i], logins[i]
		fmt.Fprintf(log, "  sched %s: GetUser at %.0f/s %s; logins %s\n", p, o.schedRate, summary(res[i]), summary(logins[i]))
	}
	return nil
}
