package bench

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// hashEstimates reads the server's two hash duration estimates from its
// /metrics (uias_password_hash_seconds and _queued_seconds: what the
// projected wait of a waiting login uses); zero for one it cannot read.
func (e *env) hashEstimates(ctx context.Context) (hash, queued time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.httpBase+"/metrics", nil)
	if err != nil {
		return 0, 0
	}
	resp, err := e.httpClient.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0
	}
	return parseHashEstimates(bufio.NewScanner(resp.Body))
}

// parseHashEstimates picks the two gauges out of a Prometheus text
// exposition.
func parseHashEstimates(sc *bufio.Scanner) (hash, queued time.Duration) {
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		d := time.Duration(v * float64(time.Second))
		switch name {
		case "uias_password_hash_seconds":
			hash = d
		case "uias_password_hash_queued_seconds":
			queued = d
		}
	}
	return hash, queued
}
