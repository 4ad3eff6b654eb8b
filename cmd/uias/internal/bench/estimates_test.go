package bench

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestParseHashEstimate(t *testing.T) {
	text := `# HELP uias_password_hash_seconds Median duration.
# TYPE uias_password_hash_seconds gauge
uias_password_hash_seconds 0.0295
uias_password_hash_waiting 3
uias_password_hash_seconds_other 9
uias_password_hash_wall_seconds 0.041
uias_password_hash_cpu_seconds 0.028
uias_password_hash_lone_seconds 0.0369
uias_password_hash_busy_pace 0.8
`
	want := serverHashTimes{est: 29500 * time.Microsecond, lone: 36900 * time.Microsecond, pace: 0.8, wall: 41 * time.Millisecond, cpu: 28 * time.Millisecond}
	if got := parseHashEstimate(bufio.NewScanner(strings.NewReader(text))); got != want {
		t.Fatalf("hash times %+v; want %+v", got, want)
	}
	if h := parseHashEstimate(bufio.NewScanner(strings.NewReader("nothing here\n"))); h != (serverHashTimes{}) {
		t.Fatalf("no gauge: %+v; want zeros", h)
	}
}

// TestBurstFloor: the burst's floor is N ÷ the mean of the raw rates
// measured before and after it, or ÷ the one before alone.
func TestBurstFloor(t *testing.T) {
	r := &round{burstN: 180, rawRate: 60, rawAfter: 40}
	if got := r.burstFloor(); got != 3600*time.Millisecond {
		t.Fatalf("floor of 180 at 60 and 40 hashes/s = %v, want 3.6 s", got)
	}
	r.rawAfter = 0
	if got := r.burstFloor(); got != 3*time.Second {
		t.Fatalf("floor of 180 at 60 hashes/s = %v, want 3 s", got)
	}
	r.rawRate = 0
	if got := r.burstFloor(); got != 0 {
		t.Fatalf("floor without a rate = %v, want 0", got)
	}
}
