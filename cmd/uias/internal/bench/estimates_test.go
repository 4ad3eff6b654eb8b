package bench

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestParseHashEstimates(t *testing.T) {
	text := `# HELP uias_password_hash_seconds Median duration.
# TYPE uias_password_hash_seconds gauge
uias_password_hash_seconds 0.0295
uias_password_hash_queued_seconds 0.042
uias_password_hash_waiting 3
uias_password_hash_seconds_other 9
`
	hash, queued := parseHashEstimates(bufio.NewScanner(strings.NewReader(text)))
	if hash != 29500*time.Microsecond || queued != 42*time.Millisecond {
		t.Fatalf("estimates %v, %v; want 29.5ms, 42ms", hash, queued)
	}
	if h, q := parseHashEstimates(bufio.NewScanner(strings.NewReader("nothing here\n"))); h != 0 || q != 0 {
		t.Fatalf("no gauges: %v, %v; want 0, 0", h, q)
	}
}
