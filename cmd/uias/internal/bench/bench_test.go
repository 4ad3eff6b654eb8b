package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestQuantileAndMedian(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if got := Quantile(d, 0.99); got != 99*time.Millisecond {
		t.Fatalf("p99 = %v", got)
	}
	if got := Quantile(d, 0.5); got != 50*time.Millisecond {
		t.Fatalf("p50 = %v", got)
	}
	if Quantile(nil, 0.5) != 0 {
		t.Fatal("empty quantile")
	}
	if Median([]float64{3, 1, 2}) != 2 || Median([]float64{4, 1, 2, 3}) != 2.5 || Median(nil) != 0 {
		t.Fatal("median")
	}
}

func TestLoopsClassifyAndStop(t *testing.T) {
	ctx := context.Background()
	n := 0
	call := func(context.Context) (Outcome, error) {
		n++ // one caller in closed loop: no race
		time.Sleep(time.Millisecond)
		switch n % 3 {
		case 0:
			return Exhausted, errors.New("busy")
		case 1:
			return Failed, errors.New("boom")
		}
		return OK, nil
	}
	start := time.Now()
	r := ClosedLoop(ctx, 1, 20*time.Millisecond, 100*time.Millisecond, call)
	if time.Since(start) > 2*time.Second {
		t.Fatal("closed loop did not stop")
	}
	if r.OK == 0 || r.Exhausted == 0 || r.Failed == 0 || r.FirstErr == nil || len(r.Lat) != r.OK {
		t.Fatalf("closed loop: %+v", r)
	}
	ok := func(context.Context) (Outcome, error) { return OK, nil }
	o := OpenLoop(ctx, 200, 0, 100*time.Millisecond, ok)
	if o.OK < 10 || o.OK > 30 {
		t.Fatalf("open loop at 200/s for 100ms: %d calls", o.OK)
	}
	w, waves := Waves(ctx, 5, 10*time.Millisecond, ok)
	if waves < 1 || w.OK != 5*waves {
		t.Fatalf("waves: %d waves, %d ok", waves, w.OK)
	}
	rs := Interleave(ctx, 3, 0, 60*time.Millisecond,
		func(w, d time.Duration) *Result { return ClosedLoop(ctx, 1, w, d, ok) },
		func(w, d time.Duration) *Result { return ClosedLoop(ctx, 1, w, d, ok) })
	if len(rs) != 2 || rs[0].Window != 60*time.Millisecond || rs[1].OK == 0 {
		t.Fatalf("interleave: %+v", rs)
	}
}

func TestFlags(t *testing.T) {
	var errb bytes.Buffer
	if code := Main(context.Background(), []string{"--only", "nope"}, &bytes.Buffer{}, &errb); code != 2 ||
		!strings.Contains(errb.String(), "unknown phase") {
		t.Fatalf("bad phase: code %d, %s", code, errb.String())
	}
	o, err := parseFlags([]string{"--hash-workers", "3", "--hash-queue", "-1"}, &errb)
	if err != nil || o.authConc != 3 || o.overloadCallers != 30 || o.env.Argon2.MemoryKiB != 19*1024 || o.env.SchedPolicy != "batch" {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	errb.Reset()
	if code := Main(context.Background(), []string{"--sched-policy", "fifo"}, &bytes.Buffer{}, &errb); code != 2 ||
		!strings.Contains(errb.String(), "--sched-policy must be batch or inherit") {
		t.Fatalf("bad sched policy: code %d, %s", code, errb.String())
	}
}

// TestSmoke runs every phase very briefly with cheap argon2 parameters: the
// harness works end to end and writes a report. Figures are not checked.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a UIAS")
	}
	out := filepath.Join(t.TempDir(), "bench.md")
	var stdout, stderr bytes.Buffer
	// One worker, a short queue and hashes of ~10 ms: a wave of 30 callers
	// must overflow even when the hashes run in C and requests are read
	// while they do (with 2 workers, 8 queued and 3 ms hashes a wave could
	// drain as fast as it arrived, and the overload row had nothing to show).
	code := Main(context.Background(), []string{"--duration", "150ms", "--warmup", "20ms", "--slices", "1",
		"--concurrency", "4", "--overload-callers", "30", "--argon2-memory", "8192", "--argon2-time", "4",
		"--hash-workers", "1", "--hash-queue", "2", "--out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	wantSched := "CPU scheduling: SCHED_BATCH for the whole process"
	if runtime.GOOS != "linux" {
		wantSched = "SCHED_BATCH could not be set here"
	}
	for _, want := range []string{"Authenticate throughput", "GetUser p99 (REST edge)", "| Goal |", "## What each row measures", wantSched} {
		if !strings.Contains(string(md), want) || !strings.Contains(stdout.String(), "| Goal |") {
			t.Fatalf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(stdout.String(), "ERROR") {
		t.Fatalf("calls failed:\n%s\n%s", stdout.String(), stderr.String())
	}
}
