package adminauth

import (
	"testing"
	"time"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
)

// BenchmarkCachedDecisionParallel is the two cached decisions of one
// administrator GetUser (the token gate's console login, the guard's
// users.read on the target) from many goroutines at once, with authz in
// the same process: for its CPU and allocations per call and, with
// -mutexprofile, the contention on the cache's lock.
//
//	go test ./adminauth -run '^$' -bench CachedDecisionParallel -cpu 2 -mutexprofile mu.out
func BenchmarkCachedDecisionParallel(b *testing.B) {
	v := &Verifier{}
	v.CacheDecisions(CacheOptions{TTL: time.Hour, Local: func() LocalDecisions { return &localGen{} }})
	c := v.cache
	ask := func() (*authzv1.CheckAdminResponse, error) {
		return &authzv1.CheckAdminResponse{Allowed: true, Revision: 1}, nil
	}
	console := &authzv1.CheckAdminRequest{Person: "adm1", Resource: ConsoleLogin.Resource, Operation: ConsoleLogin.Operation}
	read := readUser("east")
	b.ReportAllocs()
	b.SetParallelism(25) // 50 goroutines on 2 CPUs, as the benchmark's callers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for _, rq := range []*authzv1.CheckAdminRequest{console, read} {
				if r, err := c.cachedCheckAdmin(rq, ask); err != nil || !r.GetAllowed() {
					b.Fatal("refused", err)
				}
			}
		}
	})
}
