package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"time"

	"github.com/uias/uias/pkg/events"
)

// drainBacklog is the outbox backlog of the drain phase: about what piles
// up in a minute of logins while NATS is away.
const drainBacklog = 3000

// drainResult is one drain of the backlog, with or without logins.
type drainResult struct {
	took   time.Duration
	logins *Result // the logins running meanwhile (nil: none)
}

// drainOnce puts drainBacklog events into the identity outbox at once (as
// they stand after a NATS outage) and times until the identity relay has
// published them all, while logins arrive at loginRate per second (0:
// none). The relay is the process's own, which drains both the database's
// outbox and the login outbox the logins write their audit events to (on
// SQLite, ADR 0011): the backlog is counted in the database's.
func (e *env) drainOnce(ctx context.Context, loginRate float64, round int) (drainResult, error) {
	db := e.app.DB
	var res drainResult
	lctx, stopLogins := context.WithCancel(ctx)
	defer stopLogins()
	loads := make(chan *Result, 1)
	if loginRate > 0 {
		go func() { loads <- OpenLoop(lctx, loginRate, 0, time.Hour, e.callAuthenticate) }()
		// Logins running before the backlog appears, as after an outage.
		time.Sleep(time.Second)
	}
	prefix := fmt.Sprintf("bench-drain-%d-%d-", round, time.Now().UnixNano())
	var last int64
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		for i := range drainBacklog {
			ev := events.Event{ID: prefix + fmt.Sprint(i), Subject: "uias.changes.identity.bench.drain", Type: "identity.bench.drain",
				Payload: []byte(`{"note":"uias bench drain phase: an outbox backlog as after a NATS outage"}`)}
			if err := events.AddToOutbox(ctx, tx, db, ev); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM events_outbox`).Scan(&last)
	})
	if err != nil {
		return res, fmt.Errorf("drain: fill the outbox: %w", err)
	}
	start := time.Now()
	e.app.Relay.Kick()
	for {
		var left int
		if err := db.QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM events_outbox WHERE seq <= ?`), last).Scan(&left); err != nil {
			return res, fmt.Errorf("drain: count: %w", err)
		}
		if left == 0 {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return res, fmt.Errorf("drain: %d of %d events still in the outbox after 5 minutes", left, drainBacklog)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	res.took = time.Since(start)
	if loginRate > 0 {
		stopLogins()
		res.logins = <-loads
	}
	return res, nil
}

// runDrain measures the drain without logins and under logins at loginRate.
func (e *env) runDrain(ctx context.Context, loginRate float64, r *round, log io.Writer) error {
	quiet, err := e.drainOnce(ctx, 0, 0)
	if err != nil {
		return err
	}
	loaded, err := e.drainOnce(ctx, loginRate, 1)
	if err != nil {
		return err
	}
	r.drainQuiet, r.drainLoaded, r.drainLogins, r.drainRate = quiet.took, loaded.took, loaded.logins, loginRate
	fmt.Fprintf(log, "  outbox backlog of %d: drained in %s alone (%.0f events/s), %s under logins at %.1f/s (%.0f events/s); %d logins served meanwhile\n",
		drainBacklog, ms(quiet.took), drainBacklog/quiet.took.Seconds(), ms(loaded.took), loginRate,
		drainBacklog/loaded.took.Seconds(), loaded.logins.OK)
	return nil
}
