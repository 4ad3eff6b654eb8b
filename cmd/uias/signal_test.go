package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestServeExitsZeroOnSignal runs the real binary (`uias serve`, everything in
// one process) and stops it the way Ctrl-C on `make run` or a container
// runtime does: it stops gracefully and exits 0, so make and supervisors see
// no error.
func TestServeExitsZeroOnSignal(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "uias")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "serve", "--target=all", "--data-dir="+t.TempDir(),
				"--grpc-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0")
			cmd.Env = append(os.Environ(), "UIAS_BOOTSTRAP_PASSWORD=") // empty values are ignored
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var out, stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			// Read stdout until the HTTP listener is up, then keep draining it.
			ready := make(chan struct{})
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				sc := bufio.NewScanner(stdout)
				once := sync.Once{}
				for sc.Scan() {
					_, _ = out.Write([]byte(sc.Text() + "\n"))
					if strings.Contains(sc.Text(), "HTTP listening on") {
						once.Do(func() { close(ready) })
					}
				}
				_, _ = io.Copy(io.Discard, stdout)
			}()
			select {
			case <-ready:
			case <-drained:
				t.Fatalf("uias serve ended before listening:\n%s\nstderr:\n%s", out.String(), stderr.String())
			case <-time.After(60 * time.Second):
				t.Fatalf("uias serve not listening within 60 s:\n%s", stderr.String())
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			<-drained
			err = cmd.Wait()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("after %v uias exited with %v, want 0\nstdout:\n%s\nstderr:\n%s", sig, ee, out.String(), stderr.String())
			} else if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "uias: shutting down") {
				t.Errorf("no graceful shutdown line in stdout:\n%s", out.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
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
