package ctl

import (
	"strings"
	"testing"
	"time"
)

// TestParseWhen: the audit commands' time flags take a date or an RFC 3339
// time, and a bad one is named with both forms (not Go's time layout).
func TestParseWhen(t *testing.T) {
	if got, err := parseWhen("from", "2026-12-05"); err != nil || !got.Equal(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("date: %v %v", got, err)
	}
	if got, err := parseWhen("to", "2026-12-05T08:30:00+08:00"); err != nil || !got.Equal(time.Date(2026, 12, 5, 0, 30, 0, 0, time.UTC)) {
		t.Fatalf("RFC 3339: %v %v", got, err)
	}
	_, err := parseWhen("from", "05/12/2026")
	if err == nil || !strings.Contains(err.Error(), "--from must be a date (2026-12-01") || strings.Contains(err.Error(), "2006-01-02T15:04:05") {
		t.Fatalf("bad time: %v", err)
	}
}
