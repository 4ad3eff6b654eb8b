package identity

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/uias/uias/pkg/apierr"
)

// Admission of administrator reads (listings and searches). They get their
// own small pool of slots, apart from logins (whose password hashes have the
// hasher's workers and its admission by wait budget): at most AdminReads run
// at once, each within AdminReadTimeout (waiting for a slot included), so
// however many administrators search, they take at most AdminReads CPUs and
// no search runs for ever.
//
// While logins wait for a hash worker (crypto.Hasher.Contended), a slot
// also gives way to them: after a read that took d it stays taken for
// d×(1−AdminReadShare)/AdminReadShare more (at most adminReadPauseMax),
// with the read's answer already sent. A slot then reads for at most
// AdminReadShare of the time, so administrators searching in a loop take
// a tenth of a CPU a slot from saturating logins instead of a whole one
// (issue 16: logins at 0.54-0.61x of their rate beside two administrators
// searching 10 M people, the slot's search getting the Go scheduler's fair
// share against the hash workers; 0.77-0.83x with a quarter, 0.90x with a
// tenth). Without waiting logins reads run back to back, as before.

// Admin read defaults.
const (
	DefaultAdminReadTimeout = 5 * time.Second
	// AdminReadShare is the share of the time a slot reads while logins
	// wait for a hash worker.
	AdminReadShare = 0.1
	// adminReadPauseMax bounds a slot's pause after one read.
	adminReadPauseMax = time.Second
)

// DefaultAdminReads is the default number of concurrent administrator
// reads: half the CPUs, at least one.
func DefaultAdminReads() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// Reasons of administrator reads.
const (
	ReasonAdminReadsBusy = "ADMIN_READS_BUSY"
	ReasonQueryTimeout   = "QUERY_TIMEOUT"
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonAdminReadsBusy, Code: apierr.ResourceExhausted,
			Doc: "Listings and searches already use every slot for administrator reads (identity.admin_reads) until the call's time (identity.admin_read_timeout or its deadline) ran out; logins are not affected. Retry later."},
		apierr.Reason{Name: ReasonQueryTimeout, Code: apierr.DeadlineExceeded,
			Doc: "The listing or search did not finish within identity.admin_read_timeout (default 5 s): narrow the filter (an org, a status) or search for a longer text."},
	)
}

// adminReads is the pool of administrator read slots.
type adminReads struct {
	slots   chan struct{}
	timeout time.Duration
	// contended reports whether logins wait for a hash worker (nil: never).
	contended func() bool
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
}

func newAdminReads(n int, timeout time.Duration) *adminReads {
	if n <= 0 {
		n = DefaultAdminReads()
	}
	if timeout <= 0 {
		timeout = DefaultAdminReadTimeout
	}
	return &adminReads{slots: make(chan struct{}, n), timeout: timeout, now: time.Now, sleep: sleepCtx}
}

// pauseAfter is how long a slot stays taken after a read that took d:
// while logins wait for a hash worker, so long that the slot reads for
// AdminReadShare of the time (at most adminReadPauseMax); else nothing.
func (a *adminReads) pauseAfter(d time.Duration) time.Duration {
	if a.contended == nil || d <= 0 || !a.contended() {
		return 0
	}
	return min(time.Duration(float64(d)*(1-AdminReadShare)/AdminReadShare), adminReadPauseMax)
}

// run runs read in a slot with the read timeout.
func (a *adminReads) run(ctx context.Context, read func(ctx context.Context) error) error {
	rctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	select {
	case a.slots <- struct{}{}:
	case <-rctx.Done():
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return apierr.New(apierr.ResourceExhausted, ReasonAdminReadsBusy,
			"too many listings and searches at once; retry later")
	}
	var pause time.Duration
	defer func() {
		if pause <= 0 {
			<-a.slots
			return
		}
		// The caller has its answer; the slot gives way meanwhile.
		go func() {
			_ = a.sleep(context.WithoutCancel(ctx), pause)
			<-a.slots
		}()
	}()
	start := a.now()
	err := read(rctx)
	pause = a.pauseAfter(a.now().Sub(start))
	if err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return apierr.New(apierr.DeadlineExceeded, ReasonQueryTimeout,
			"the listing took too long; narrow the filter or search for a longer text")
	}
	return err
}

// listRead runs a store listing as an administrator read.
func listRead[T any](ctx context.Context, s *Service, size int32, token string,
	list func(ctx context.Context, p Page) ([]T, string, error)) ([]T, string, error) {
	p, err := pageOf(size, token)
	if err != nil {
		return nil, "", err
	}
	var (
		out  []T
		next string
	)
	err = s.reads.run(ctx, func(ctx context.Context) error {
		var err error
		out, next, err = list(ctx, p)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}
