package bench

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// hashEstimate reads the server's hash duration estimate from its /metrics
// (uias_password_hash_seconds: what the projected wait of a waiting login
// uses); zero when it cannot read it.
func (e *env) hashEstimate(ctx context.Context) time.Duration {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.httpBase+"/metrics", nil)
	if err != nil {
		return 0
	}
	resp, err := e.httpClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0
	}
	return parseHashEstimate(bufio.NewScanner(resp.Body))
}

// parseHashEstimate picks the gauge out of a Prometheus text exposition.
func parseHashEstimate(sc *bufio.Scanner) time.Duration {
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		if name == "uias_password_hash_seconds" {
			return time.Duration(v * float64(time.Second))
		}
	}
	return 0
}
