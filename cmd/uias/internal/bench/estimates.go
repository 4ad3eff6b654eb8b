package bench

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serverHashTimes are the server's figures of its last hashes (its
// /metrics): the duration estimate the projected wait of a waiting login
// uses (uias_password_hash_seconds), the lone hashes' median and the busy
// workers' pace it is made of, and the median wall and thread CPU times of
// the lone hashes; zero: not read (a pace of 0: not known yet).
type serverHashTimes struct {
	est, lone, wall, cpu time.Duration
	pace                 float64
}

// hashEstimate reads the server's hash times from its /metrics; zeros when
// it cannot read them.
func (e *env) hashEstimate(ctx context.Context) serverHashTimes {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.httpBase+"/metrics", nil)
	if err != nil {
		return serverHashTimes{}
	}
	resp, err := e.httpClient.Do(req)
	if err != nil {
		return serverHashTimes{}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return serverHashTimes{}
	}
	return parseHashEstimate(bufio.NewScanner(resp.Body))
}

// parseHashEstimate picks the gauges out of a Prometheus text exposition.
func parseHashEstimate(sc *bufio.Scanner) serverHashTimes {
	var t serverHashTimes
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
			t.est = d
		case "uias_password_hash_lone_seconds":
			t.lone = d
		case "uias_password_hash_busy_pace":
			t.pace = v
		case "uias_password_hash_wall_seconds":
			t.wall = d
		case "uias_password_hash_cpu_seconds":
			t.cpu = d
		}
	}
	return t
}
