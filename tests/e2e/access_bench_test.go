package e2e

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/cmd/uias/app"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// BenchmarkAccessLog measures what the access records cost the calls of a
// monolithic process (target all: the audit component stores them in the
// same process), same run, records on and off: a login (argon2id at the
// test's small parameters) and a cheap administrator read (GetUser). Run:
// go test ./e2e -run '^$' -bench AccessLog -benchtime 3s
func BenchmarkAccessLog(b *testing.B) {
	for _, off := range []bool{false, true} {
		cfg := testConfig(b.TempDir())
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		a, err := app.Start(ctx, cfg, app.Options{Logger: zap.NewNop(), BootstrapPassword: adminPassword, NoAccessLog: off})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		e := &env{t: b, app: a}
		e.dial(a.GRPCAddr())
		e.login()
		f := e.seed("bench", "bench-user", nil, nil)
		name := "records=on"
		if off {
			name = "records=off"
		}
		b.Run(name+"/login", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.authPW(f, f.account, f.password); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(name+"/getuser", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: f.userID}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		_ = a.Stop(sctx)
		c()
	}
}
