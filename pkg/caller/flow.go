package caller

import (
	"context"
	"sync"

	"github.com/uias/uias/pkg/apierr"
)

// Flow control (JR/T 0185-2020 10.1.2: 「控制规则包括最大允许商业银行应用程序接口
// 调用并发数、单位时间最大交易调用量等」): an application's rate limit (calls
// per second, RateLimiter) and its concurrency limit (calls in progress,
// Concurrency) are the application's whole: with several instances of a
// component serving, each takes its share (Share), so that N replicas
// admit about the configured figures between them, not N times them (the
// calls of one application are spread over the instances by the
// round-robin balancing of the clients and the edge).

// ReasonConcurrencyLimited refuses a call while the application already
// has its most calls in progress.
const ReasonConcurrencyLimited = "CONCURRENCY_LIMITED"

func init() {
	apierr.Register(apierr.Reason{Name: ReasonConcurrencyLimited, Code: apierr.ResourceExhausted, Legacy: -6,
		Doc: "The application already has as many calls in progress as its max_concurrent allows (JR/T 0185-2020 10.1.2); retry when one has ended."})
}

// ErrConcurrencyLimited is the refusal of a call beyond an application's
// concurrency limit.
var ErrConcurrencyLimited = apierr.New(apierr.ResourceExhausted, ReasonConcurrencyLimited,
	"this application already has its most calls in progress (max_concurrent), retry when one has ended")

// Share is the part of an application's limits one instance enforces: the
// number of instances of the component serving now (at least 1). nil: 1.
type Share func() int

// instances is s's count (1 for nil or less).
func (s Share) instances() int {
	if s == nil {
		return 1
	}
	return max(1, s())
}

// Rate is the rate limit (calls per second) and burst this instance
// applies of an application's: the share of each (a burst at least 1).
func (s Share) Rate(rate float64, burst int) (float64, int) {
	n := s.instances()
	if n == 1 || rate <= 0 {
		return rate, burst
	}
	b := burst
	if b < 1 {
		b = int(rate) // RateLimiter's default burst: the rate
	}
	return rate / float64(n), max(1, (b+n-1)/n)
}

// Concurrent is the concurrency limit this instance applies of an
// application's limit (0: none): its share rounded up.
func (s Share) Concurrent(limit int) int {
	n := s.instances()
	if limit <= 0 || n == 1 {
		return limit
	}
	return (limit + n - 1) / n
}

// Concurrency counts the calls in progress per key (an App_ID). Safe for
// concurrent use.
type Concurrency struct {
	mu       sync.Mutex
	inFlight map[string]int
}

// NewConcurrency returns an empty Concurrency.
func NewConcurrency() *Concurrency { return &Concurrency{inFlight: map[string]int{}} }

// Enter counts a call of key in, if fewer than limit are in progress, and
// returns the function that counts it out (call it once, when the call
// ends); ok is false when the limit is reached. limit <= 0: no limit,
// nothing counted, leave nil (nothing to give back: the hot path of an
// application without a limit allocates nothing).
func (c *Concurrency) Enter(key string, limit int) (leave func(), ok bool) {
	if limit <= 0 {
		return nil, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight[key] >= limit {
		return nil, false
	}
	c.inFlight[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.inFlight[key]--; c.inFlight[key] <= 0 {
				delete(c.inFlight, key)
			}
		})
	}, true
}

// InFlight is the number of calls of key in progress.
func (c *Concurrency) InFlight(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight[key]
}

// Enter counts a call of app in against its concurrency limit (this
// instance's share of App.MaxConcurrent) and returns the function that
// counts it out when the call ends (nil without a limit); beyond the limit
// the caller is refused ErrConcurrencyLimited (told to Denied, like every
// refusal).
func (a *AppAuthenticator) Enter(ctx context.Context, app *App) (leave func(), err error) {
	leave, ok := a.flows.Enter(app.ID, a.share.Concurrent(app.MaxConcurrent))
	if !ok {
		return nil, a.refuse(ctx, app.ID, ErrConcurrencyLimited, a.now())
	}
	return leave, nil
}
