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
`
	if hash := parseHashEstimate(bufio.NewScanner(strings.NewReader(text))); hash != 29500*time.Microsecond {
		t.Fatalf("estimate %v; want 29.5ms", hash)
	}
	if h := parseHashEstimate(bufio.NewScanner(strings.NewReader("nothing here\n"))); h != 0 {
		t.Fatalf("no gauge: %v; want 0", h)
	}
}
