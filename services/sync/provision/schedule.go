package provision

import (
	"fmt"
	"regexp"
	"time"

	// The time zones of BatchTimeZone, in the binary: an image without
	// /usr/share/zoneinfo (distroless) knows Asia/Shanghai too.
	_ "time/tzdata"
)

// Scheduled batches at a time of day (design 004 2.1.5.3 (1): the
// synchronisation timer sets the time and the period). Without BatchAt a
// batch is due BatchEvery after the last one. With BatchAt it is due at
// that time of day, every BatchEvery days (1 when 0): the slot of a day is
// BatchAt in BatchTimeZone on that date (daylight saving as the zone has
// it); a slot missed while no sync process ran is caught up at the next
// check, and the next slot follows the period from the slot, not from the
// catch-up.

var hhmm = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// day is the period of a BatchAt schedule with BatchEvery 0.
const day = 24 * time.Hour

func (s *Subscription) checkBatchAt() error {
	if s.BatchAt == "" {
		if s.BatchTimeZone != "" {
			return &ValidationError{Field: "batch_time_zone", Msg: "is the zone of batch_at: give batch_at too"}
		}
		return nil
	}
	if !hhmm.MatchString(s.BatchAt) {
		return &ValidationError{Field: "batch_at", Msg: fmt.Sprintf("must be a time of day HH:MM (00:00-23:59), got %q", s.BatchAt)}
	}
	if s.BatchEvery%day != 0 {
		return &ValidationError{Field: "batch_every", Msg: fmt.Sprintf("must be a whole number of days with batch_at (or 0: every day), got %s",
			s.BatchEvery)}
	}
	if _, err := s.location(); err != nil {
		return &ValidationError{Field: "batch_time_zone", Msg: fmt.Sprintf("must be an IANA time zone such as Asia/Shanghai (or empty: UTC), got %q",
			s.BatchTimeZone)}
	}
	return nil
}

func (s *Subscription) location() (*time.Location, error) {
	if s.BatchTimeZone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(s.BatchTimeZone)
}

// BatchDue reports whether a scheduled batch of s is due at now.
func (s *Subscription) BatchDue(now time.Time) bool {
	if s.BatchAt == "" {
		return s.BatchEvery > 0 && now.Sub(s.LastBatchAt) >= s.BatchEvery
	}
	slot, ok := s.lastSlot(now)
	if !ok || !s.LastBatchAt.Before(slot) {
		return false // not scheduled, or this slot's batch ran
	}
	if s.LastBatchAt.IsZero() {
		return true
	}
	// The last batch was before this slot: due when the period has passed
	// since the slot that batch was for (a catch-up counts as its slot's).
	// An hour of slack for a daylight saving change between the two.
	prev, _ := s.lastSlot(s.LastBatchAt)
	return slot.Sub(prev) >= max(s.BatchEvery, day)-time.Hour
}

// lastSlot is the latest BatchAt slot at or before now.
func (s *Subscription) lastSlot(now time.Time) (time.Time, bool) {
	loc, err := s.location()
	if err != nil || !hhmm.MatchString(s.BatchAt) {
		return time.Time{}, false
	}
	var h, m int
	if _, err := fmt.Sscanf(s.BatchAt, "%d:%d", &h, &m); err != nil {
		return time.Time{}, false
	}
	local := now.In(loc)
	slot := time.Date(local.Year(), local.Month(), local.Day(), h, m, 0, 0, loc)
	if slot.After(now) {
		slot = time.Date(local.Year(), local.Month(), local.Day()-1, h, m, 0, 0, loc)
	}
	return slot, true
}
