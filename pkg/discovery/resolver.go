package discovery

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	gresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
)

// Timings of the resolver; variables so tests in this package may shorten
// them.
var (
	// unreachableAfter is how long the first read of the endpoints may
	// take before the resolver reports etcd unreachable, so that calls fail
	// at once with UNAVAILABLE instead of waiting for their deadline.
	unreachableAfter = 500 * time.Millisecond
	// minRetry and maxRetry bound the back-off between attempts to read
	// and watch the endpoints again.
	minRetry = 200 * time.Millisecond
	maxRetry = 5 * time.Second
)

// etcdBuilder builds resolvers for "etcd:///uias/<component>" that follow
// the endpoints of go.etcd.io/etcd/client/v3/naming/endpoints, like that
// package's own resolver, with three differences that matter when etcd is
// unreachable: Build returns at once (etcd's resolver reads the endpoints
// inside Build, with no deadline, so the first call and then
// ClientConn.Close block for as long as etcd is away); until the first
// read succeeds the resolver reports an error, so calls fail fast with
// UNAVAILABLE; and a watch that ends (etcd restarted, compaction) is
// started again from a fresh read instead of leaving the connection with
// stale addresses forever. While etcd is away after a first read the last
// known addresses keep serving.
type etcdBuilder struct {
	cli *clientv3.Client
	log *zap.Logger
}

func (b etcdBuilder) Scheme() string { return "etcd" }

func (b etcdBuilder) Build(target gresolver.Target, cc gresolver.ClientConn, _ gresolver.BuildOptions) (gresolver.Resolver, error) {
	name := target.URL.Path
	if name == "" {
		name = target.URL.Opaque
	}
	for len(name) > 0 && name[0] == '/' {
		name = name[1:]
	}
	em, err := endpoints.NewManager(b.cli, name)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "discovery: endpoint manager for %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &etcdResolver{em: em, cc: cc, target: name, cancel: cancel,
		log: b.log.With(zap.String("target", "etcd:///"+name))}
	r.wg.Add(1)
	go r.run(ctx)
	return r, nil
}

type etcdResolver struct {
	em     endpoints.Manager
	cc     gresolver.ClientConn
	target string
	log    *zap.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (r *etcdResolver) ResolveNow(gresolver.ResolveNowOptions) {}

func (r *etcdResolver) Close() {
	r.cancel()
	r.wg.Wait()
}

// run reads and watches the endpoints until ctx ends, starting over after
// a failure.
func (r *etcdResolver) run(ctx context.Context) {
	defer r.wg.Done()
	resolved := false // a state was sent: keep it while etcd is away
	backoff := minRetry
	for ctx.Err() == nil {
		wch, err := r.open(ctx, resolved)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("etcd unreachable: cannot read the endpoints; retrying", zap.Error(err), zap.Duration("retry_in", backoff))
			if !resolved {
				r.cc.ReportError(unreachable(r.target, err))
			}
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, maxRetry)
			continue
		}
		if backoff > minRetry {
			r.log.Info("etcd reachable again: endpoints read")
		}
		backoff = minRetry
		// The watch channel starts with the full list (when not empty),
		// then sends changes. A fresh read replaces what was known.
		all := map[string]endpoints.Update{}
		send := func() {
			eps := make([]gresolver.Endpoint, 0, len(all))
			for _, up := range all {
				eps = append(eps, gresolver.Endpoint{Addresses: []gresolver.Address{{Addr: up.Endpoint.Addr}}})
			}
			if err := r.cc.UpdateState(gresolver.State{Endpoints: eps}); err != nil {
				r.log.Debug("resolver state not accepted", zap.Error(err))
			}
			resolved = true
		}
		select {
		case ups, ok := <-wch:
			if ok {
				apply(all, ups)
			}
		default:
		}
		send()
		for ups := range wch {
			apply(all, ups)
			send()
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("etcd watch of the endpoints ended; reading them again")
		if !sleep(ctx, minRetry) {
			return
		}
	}
}

// open reads the endpoints and starts watching them. The first time (no
// state sent yet), if the read has not succeeded within unreachableAfter,
// the resolver reports etcd unreachable so that calls fail fast while the
// read goes on.
func (r *etcdResolver) open(ctx context.Context, resolved bool) (endpoints.WatchChannel, error) {
	type result struct {
		wch endpoints.WatchChannel
		err error
	}
	done := make(chan result, 1)
	go func() {
		wch, err := r.em.NewWatchChannel(ctx)
		done <- result{wch, err}
	}()
	if !resolved {
		t := time.NewTimer(unreachableAfter)
		defer t.Stop()
		select {
		case res := <-done:
			return res.wch, res.err
		case <-t.C:
			r.log.Warn("etcd does not answer: calls fail until it does")
			r.cc.ReportError(unreachable(r.target, fmt.Errorf("no answer within %s", unreachableAfter)))
		}
	}
	res := <-done
	return res.wch, res.err
}

func unreachable(target string, err error) error {
	return status.Errorf(codes.Unavailable, "discovery: etcd unreachable, no endpoints for %s: %v", target, err)
}

func apply(all map[string]endpoints.Update, ups []*endpoints.Update) {
	for _, up := range ups {
		switch up.Op {
		case endpoints.Add:
			all[up.Key] = *up
		case endpoints.Delete:
			delete(all, up.Key)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
