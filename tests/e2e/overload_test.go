package e2e

import (
	"sync"
	"testing"

	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/crypto"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// TestHashingOverload: with one hashing worker and no waiting allowed, a
// burst of logins is answered either normally or with a fast
// RESOURCE_EXHAUSTED OVERLOADED (legacy -6) — never queued without bound,
// never another error — while logins of unknown accounts in the same burst,
// which need no hash, are all answered -2 (hashing capacity never refuses
// them, in the transport or anywhere else).
func TestHashingOverload(t *testing.T) {
	cfg := testConfig(t.TempDir())
	identitycomponent.Settings(&cfg).Argon2 = crypto.DefaultArgon2() // slow enough for calls to overlap
	identitycomponent.Settings(&cfg).HashWorkers, identitycomponent.Settings(&cfg).HashQueue = 1, crypto.NoQueue
	e := start(t, cfg)
	e.login()
	f := e.seed("oa", "olga", nil, nil)

	overloaded := 0
	for burst := 0; burst < 5 && overloaded == 0; burst++ {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < 12; i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				res, err := e.authPW(f, "no-such-account", f.password)
				if err != nil || res.GetResultCode() != -2 {
					t.Errorf("unknown account during the burst: %v %v, want result -2", res, err)
				}
			}()
			go func() {
				defer wg.Done()
				res, err := e.authPW(f, f.account, f.password)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					if res.GetResultCode() != 0 {
						t.Errorf("unexpected verdict %d %v", res.GetResultCode(), res.GetReason())
					}
					return
				}
				st := status.Convert(err)
				ei := errorInfo(st)
				if st.Code().String() != "ResourceExhausted" || ei.GetReason() != "OVERLOADED" || ei.GetMetadata()["legacy_code"] != "-6" {
					t.Errorf("want OK or OVERLOADED, got %v", err)
					return
				}
				overloaded++
			}()
		}
		wg.Wait()
	}
	if overloaded == 0 {
		t.Fatal("no call was refused as OVERLOADED with 1 worker and no queue")
	}
	// Refusals did not count as failed logins.
	res, err := e.authPW(f, f.account, f.password)
	if err != nil || res.GetResultCode() != 0 {
		t.Fatalf("after the burst: %v %v", res, err)
	}
}
