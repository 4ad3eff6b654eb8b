package provision

import (
	"errors"
	"testing"
	"time"
)

// TestBatchDue: a schedule at a time of day in a zone, daily or every N
// days; missed slots caught up once; the period alone as before.
func TestBatchDue(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, sh) }
	daily := &Subscription{BatchAt: "02:00", BatchTimeZone: "Asia/Shanghai"}
	for _, c := range []struct {
		last, now time.Time
		want      bool
	}{
		{time.Time{}, at(1, 1, 0), true},    // never ran: yesterday's slot is due
		{at(1, 2, 0), at(1, 3, 0), false},   // this slot's batch ran
		{at(1, 2, 0), at(2, 1, 59), false},  // before today's slot
		{at(1, 2, 0), at(2, 2, 0), true},    // today's slot
		{at(1, 2, 1), at(2, 2, 0), true},    // last enqueued a minute late
		{at(1, 23, 0), at(2, 2, 0), true},   // a catch-up late yesterday counts as yesterday's slot
		{at(1, 1, 0), at(1, 13, 0), true},   // slot missed while stopped: caught up
		{at(1, 13, 0), at(1, 14, 0), false}, // caught up once
	} {
		daily.LastBatchAt = c.last
		if got := daily.BatchDue(c.now); got != c.want {
			t.Errorf("daily, last %v, now %v: %v", c.last, c.now, got)
		}
	}
	weekly := &Subscription{BatchAt: "02:00", BatchTimeZone: "Asia/Shanghai", BatchEvery: 7 * day, LastBatchAt: at(1, 22, 0)}
	for d, want := range map[int]bool{2: false, 7: false, 8: true} {
		if got := weekly.BatchDue(at(d, 2, 30)); got != want {
			t.Errorf("weekly, day %d: %v", d, got)
		}
	}
	// UTC when no zone: 02:00 UTC is 10:00 in Shanghai.
	utc := &Subscription{BatchAt: "02:00", LastBatchAt: at(1, 10, 30)}
	if utc.BatchDue(at(2, 9, 59)) || !utc.BatchDue(at(2, 10, 0)) {
		t.Error("UTC schedule")
	}
	// The period alone: from the last batch.
	every := &Subscription{BatchEvery: time.Hour, LastBatchAt: at(1, 2, 0)}
	if every.BatchDue(at(1, 2, 59)) || !every.BatchDue(at(1, 3, 0)) {
		t.Error("period schedule")
	}
}

func TestBatchAtValidation(t *testing.T) {
	for _, c := range []struct {
		s     Subscription
		field string
	}{
		{Subscription{BatchAt: "2:00"}, "batch_at"},
		{Subscription{BatchAt: "24:00"}, "batch_at"},
		{Subscription{BatchAt: "02:00", BatchEvery: 36 * time.Hour}, "batch_every"},
		{Subscription{BatchAt: "02:00", BatchTimeZone: "Mars/Olympus"}, "batch_time_zone"},
		{Subscription{BatchTimeZone: "Asia/Shanghai"}, "batch_time_zone"},
		{Subscription{BatchAt: "23:59", BatchTimeZone: "Asia/Shanghai", BatchEvery: 2 * day}, ""},
	} {
		err := c.s.checkBatchAt()
		var ve *ValidationError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%+v: %v", c.s, err)
		case c.field != "" && (!errors.As(err, &ve) || ve.Field != c.field):
			t.Errorf("%+v: %v, want an error on %s", c.s, err, c.field)
		}
	}
}
