package e2e

// Helpers that run the real `uias` binary (built once per test binary) as
// processes of their own: for start-up faults (exit code and message) and
// for crashes (kill -9), which an in-process Start cannot reproduce.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// TestMain removes the binary built for the process tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// uiasBinary builds cmd/uias once (on first use: tests that need no
// process do not pay for the build) and returns its path.
func uiasBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "uias-e2e-bin-*")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "uias")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/uias/uias/cmd/uias")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build cmd/uias: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running `uias` process.
type proc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	exitCode       int
}

// cheapEnv makes the children hash cheaply and quietly, with the test's
// bootstrap password, and nothing of the test's own UIAS_* environment.
func cheapEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "UIAS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "UIAS_BOOTSTRAP_PASSWORD="+adminPassword, "UIAS_ARGON2_MEMORY_KIB=8192",
		"UIAS_ARGON2_TIME=1", "UIAS_ARGON2_THREADS=1", "UIAS_LOG_LEVEL=warn")
	return append(env, extra...)
}

// startProc runs `uias args...` with env; it is killed when the test ends.
func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(uiasBinary(t), args...), stdout: &syncBuffer{}, stderr: &syncBuffer{},
		done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
	})
	return p
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// exited waits up to d for the process to end; ok is false if it still runs.
func (p *proc) exited(d time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.exitCode, true
	case <-time.After(d):
		return 0, false
	}
}

// waitStdout waits (at most 60 s: a hang, not a timing expectation) for a
// line of stdout containing marker and returns what follows it.
func (p *proc) waitStdout(marker string) string {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(p.stdout.String(), "\n") {
			if _, after, ok := strings.Cut(line, marker); ok {
				return strings.TrimSpace(after)
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("uias exited (%d) before printing %q:\n%s\n%s", p.exitCode, marker, p.stdout, p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.t.Fatalf("no %q from uias:\n%s\n%s", marker, p.stdout, p.stderr)
	return ""
}

// identityArgs are the flags of `uias serve --target=identity` against etcd
// and NATS, with its data (and key ring) in dir.
func identityArgs(dir string, etcd []string, natsURL string) []string {
	return []string{"serve", "--target=identity", "--data-dir=" + dir, "--grpc-addr=127.0.0.1:0",
		"--http-addr=127.0.0.1:0", "--etcd-endpoints=" + strings.Join(etcd, ","), "--nats-url=" + natsURL}
}

// newKeyRing makes a key ring in dir with `uias keys new --out`.
func newKeyRing(t *testing.T, dir string) string {
	t.Helper()
	ring := filepath.Join(dir, "keyring.json")
	bin := uiasBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "keys", "new", "--out", ring).CombinedOutput(); err != nil {
		t.Fatalf("uias keys new: %v\n%s", err, out)
	}
	return ring
}
