package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/sync/applier"
	synccomponent "github.com/uias/uias/services/sync/component"
	"github.com/uias/uias/services/sync/synctest"
)

// BenchmarkSyncCatchUpApplied: the catch-up of a level-2 centre cut off
// from level 1, as deployed: level 1 is a whole UIAS process (identity,
// authz, sync, ticket, audit), whose sync component hands each batch of
// the level-2 centre's changes to identity's ReplicaService and authz's
// AuthzReplicaService (one gRPC call and one transaction each) before its
// own replica store, and whose identity writes a local event of each change
// applied (read by its authz and ticket). The level-2 centre is a UIAS
// process too: its bureau, its people and their grants are real writes.
//
// During the cut the level-2 centre's CHANGES receive n changes: 90%
// people's updates, 10% grants written again, copies of real events of its
// identity and authz (new event ids and names; written straight into its
// NATS, because n real writes would take longer than the catch-up). After
// the heal the benchmark measures the time until level 1's link has
// applied them all (catch_up_s), and, as the floor, the time JetStream took
// to copy them across the leaf node into level 1's SYNC_L2A stream
// (sourced_s), which level 1 applies as the copies arrive:
// catch_up_ratio = catch_up_s / sourced_s.
//
// UIAS_SYNC_CATCHUP_N sets n (default 10 000; the goal, 100 000 in <= 60 s
// on 2 CPUs, is stated for UIAS_SYNC_CATCHUP_N=100000: make bench-sync).
func BenchmarkSyncCatchUpApplied(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("UIAS_SYNC_CATCHUP_N")); err == nil && v > 0 {
		n = v
	}
	const people = 200
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		l1n := synctest.StartLevel1File(b, filepath.Join(deployCentres, "nats-l1.conf"))
		l2n := synctest.StartLevel2File(b, filepath.Join(deployCentres, "nats-l2a.conf"), "l2a", l1n)

		// The bureau, written at l2a: its org, people, a role and a grant
		// to each person, and one update of each person.
		cfg2 := testConfig(filepath.Join(dir, "l2a"))
		cfg2.NATS.URL, cfg2.NATS.Embedded = l2n.URL(), false
		l2 := startB(b, cfg2)
		l2.login()
		bureau, err := l2.admin.CreateOrg(l2.adm(), &identityv1.CreateOrgRequest{Code: "bureau-l2a", Name: "Bureau l2a", ParentId: l2.root})
		if err != nil {
			b.Fatal(err)
		}
		oa, err := l2.admin.CreateApp(l2.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "l2a-oa", Name: "OA"})
		if err != nil {
			b.Fatal(err)
		}
		az2 := authzv1.NewAuthzAdminServiceClient(l2.conn)
		role, err := az2.CreateRole(l2.adm(), &authzv1.Role{App: oa.GetApp().GetId(), Code: "reader"})
		if err != nil {
			b.Fatal(err)
		}
		for i := range people {
			u, err := l2.admin.CreateUser(l2.adm(), &identityv1.CreateUserRequest{LoginName: fmt.Sprintf("p%d", i),
				DisplayName: "P", OrgId: bureau.GetId(), Password: "Str0ng-Pass!42"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := l2.admin.UpdateUser(l2.adm(), &identityv1.UpdateUserRequest{Id: u.GetId(), UpdateMask: []string{"display_name"},
				DisplayName: "P 0"}); err != nil {
				b.Fatal(err)
			}
			if _, err := az2.CreateGrant(l2.adm(), &authzv1.Grant{RoleId: role.GetRole().GetId(),
				Subject: &authzv1.Subject{Kind: "user", Id: u.GetId()}}); err != nil {
				b.Fatal(err)
			}
		}
		_, js2 := l2n.Connect(b)
		// Templates: the bureau people's updates (not the administrators'
		// appointments, which carry no replica part) and their grants.
		updates := streamMsgs(b, js2, "uias.changes.identity.user.updated", people, func(p []byte) bool {
			return bytesContain(p, `"replica":`)
		})
		grants := streamMsgs(b, js2, "uias.changes.authz.grant.put", people, func(p []byte) bool {
			var ch struct {
				Data []byte `json:"data"` // the grant, as authz.Change carries it
			}
			return json.Unmarshal(p, &ch) == nil && bytesContain(ch.Data, role.GetRole().GetId())
		})

		// Level 1, which holds the bureau as l2a's subtree.
		f1 := centreFile(b, "uias-l1.yaml")
		f1.Peers = f1.Peers[:1]
		f1.Peers[0].Subtrees = []string{bureau.GetId()}
		cfg1 := testConfig(filepath.Join(dir, "l1"))
		cfg1.NATS.URL, cfg1.NATS.Embedded = l1n.URL(), false
		*synccomponent.Settings(&cfg1) = f1
		l1 := startB(b, cfg1)
		l1.login()
		h1 := l1.app.Value(synccomponent.Name).(*synccomponent.Handle)
		up := upChanges(b, js2)
		waitApplied(b, h1, up, 5*time.Minute)

		// The cut: n changes queue at l2a.
		l2n.Link.Cut()
		synctest.WaitLeaf(b, l2n.Server, false)
		publishCopies(b, js2, updates, grants, n)
		want := upChanges(b, js2)
		if want != up+uint64(n) {
			b.Logf("l2a's CHANGES hold %d changes to send, %d more than the copies", want, want-up-uint64(n))
		}

		b.StartTimer()
		stopProfile := catchUpProfile(b)
		ru0 := cpuTime(b)
		l2n.Link.Heal()
		healed := time.Now()
		_, js1 := l1n.Connect(b)
		sourced := make(chan time.Duration, 1)
		go func() {
			for time.Since(healed) < 10*time.Minute {
				if st, err := js1.Stream(context.Background(), applier.StreamFor("l2a")); err == nil && st.CachedInfo().State.Msgs >= want {
					sourced <- time.Since(healed)
					return
				}
				time.Sleep(benchPoll)
			}
			sourced <- 0
		}()
		waitApplied(b, h1, want, 10*time.Minute)
		took := time.Since(healed)
		cpu := cpuTime(b) - ru0
		stopProfile()
		b.StopTimer()
		src := <-sourced

		// Level 1's identity holds each person's last name.
		last := lastName(n, people)
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(updates[people-1].Data, &ev); err != nil || ev.ID == "" {
			b.Fatalf("template update without an id: %v", err)
		}
		got, err := l1.admin.GetUser(l1.adm(), &identityv1.GetUserRequest{Id: ev.ID})
		if err != nil || got.GetDisplayName() != last {
			b.Fatalf("level 1 holds %q for the last person, want %q (%v)", got.GetDisplayName(), last, err)
		}
		b.ReportMetric(took.Seconds(), "catch_up_s")
		b.ReportMetric(src.Seconds(), "sourced_s")
		b.ReportMetric(float64(n)/took.Seconds(), "changes/s")
		b.ReportMetric(took.Seconds()/src.Seconds(), "catch_up_ratio")
		b.ReportMetric(100000*took.Seconds()/float64(n), "projected_100k_s")
		// The CPU of the whole test process (both centres, their NATS
		// servers and the relay) from the heal until level 1 applied the
		// last change, per change: the figure that does not depend on the
		// machine's load.
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n), "cpu_ms/change")
	}
}

// cpuTime is the CPU time (user and system) the test process used so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// catchUpProfile writes a CPU profile of the catch-up alone (from the heal
// until level 1 applied the last change, without the centres' setup) to
// the file UIAS_SYNC_CPUPROFILE names, if any; it returns its stop.
func catchUpProfile(b *testing.B) func() {
	b.Helper()
	path := os.Getenv("UIAS_SYNC_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.Fatalf("UIAS_SYNC_CPUPROFILE: %v (not with -cpuprofile)", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// startB starts a UIAS process for a benchmark (start is for tests).
func startB(b *testing.B, cfg config.Config) *env {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{Logger: zap.NewNop(), BootstrapPassword: adminPassword})
	if err != nil {
		b.Fatalf("start: %v", err)
	}
	b.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 30*time.Second)
		defer c()
		_ = a.Stop(sctx)
	})
	e := &env{t: b, app: a}
	e.dial(a.GRPCAddr())
	return e
}

func bytesContain(p []byte, s string) bool { return strings.Contains(string(p), s) }

// streamMsgs returns the first want messages of the CHANGES stream on
// subject whose payload keep takes.
func streamMsgs(b *testing.B, js jetstream.JetStream, subject string, want int, keep func([]byte) bool) []*jetstream.RawStreamMsg {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, events.StreamChanges)
	if err != nil {
		b.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	var seq uint64
	for len(out) < want {
		m, err := s.GetMsg(ctx, seq+1, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			if ctx.Err() != nil {
				b.Fatalf("%d of %d %s events in l2a's CHANGES: %v", len(out), want, subject, err)
			}
			time.Sleep(20 * time.Millisecond) // the relay publishes them
			continue
		}
		if keep(m.Data) {
			out = append(out, m)
		}
		seq = m.Sequence
	}
	return out
}

// upChanges counts the changes in js's CHANGES that level 1 applies.
func upChanges(b *testing.B, js jetstream.JetStream) uint64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.StreamChanges)
	if err != nil {
		b.Fatal(err)
	}
	var n uint64
	for _, f := range applier.Up {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(f))
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range info.State.Subjects {
			n += c
		}
	}
	return n
}

// benchPoll is how often the benchmark looks at level 1's cursor and
// stream: every 25 ms adds at most 25 ms to a catch-up of seconds, where
// every 5 ms cost the process ~0.03 ms of CPU per change (a cursor read and
// a stream info request 200 times a second), counted in cpu_ms/change.
const benchPoll = 25 * time.Millisecond

// waitApplied waits until level 1's link of l2a has applied (or skipped)
// the first want messages of its stream.
func waitApplied(b *testing.B, h *synccomponent.Handle, want uint64, within time.Duration) {
	b.Helper()
	deadline := time.Now().Add(within)
	for {
		c, err := h.Store.Cursor(context.Background(), "l2a")
		if err == nil && c.Seq >= want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("level 1 applied %d of %d changes of l2a in %s (%v)", c.Seq, want, within, err)
		}
		time.Sleep(benchPoll)
	}
}

// lastName is the display name the copies give the last person.
func lastName(n, people int) string {
	for i := n - 1; i >= 0; i-- {
		if i%10 != 9 && (i-i/10)%people == people-1 {
			return fmt.Sprintf("P %d", i+1)
		}
	}
	return "P 0"
}

// publishCopies writes n changes into js's CHANGES as the outbox relay
// would: change i is a grant of grants written again when i%10 == 9, else
// an update of the next person of updates, renamed "P <i+1>".
func publishCopies(b *testing.B, js jetstream.JetStream, updates, grants []*jetstream.RawStreamMsg, n int) {
	b.Helper()
	var futs []jetstream.PubAckFuture
	wait := func() {
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			case <-time.After(time.Minute):
				b.Fatal("publish not acknowledged in a minute")
			}
		}
		futs = futs[:0]
	}
	u, g := 0, 0
	for i := range n {
		if len(futs) == 1000 {
			wait()
		}
		var src *jetstream.RawStreamMsg
		data := []byte(nil)
		if i%10 == 9 {
			src, g = grants[g%len(grants)], g+1
			data = src.Data
		} else {
			src, u = updates[u%len(updates)], u+1
			data = renamed(b, src.Data, fmt.Sprintf("P %d", i+1))
		}
		m := nats.NewMsg(src.Subject)
		m.Data = data
		m.Header.Set(events.HeaderType, src.Header.Get(events.HeaderType))
		m.Header.Set(jetstream.MsgIDHeader, ids.New())
		m.Header.Set(events.HeaderTime, time.Now().UTC().Format(time.RFC3339Nano))
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			b.Fatal(err)
		}
		futs = append(futs, f)
	}
	wait()
}

// renamed is an identity user.updated payload with the display name set to
// name in its data and in its replica part.
func renamed(b *testing.B, payload []byte, name string) []byte {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(payload, &p); err != nil {
		b.Fatal(err)
	}
	for _, k := range []string{"data", "replica"} {
		var part map[string]json.RawMessage
		if err := json.Unmarshal(p[k], &part); err != nil {
			b.Fatalf("user.updated without %s: %v", k, err)
		}
		part["display_name"], _ = json.Marshal(name)
		if k == "replica" {
			part["updated_at"], _ = json.Marshal(time.Now().UTC())
		}
		p[k], _ = json.Marshal(part)
	}
	out, _ := json.Marshal(p)
	return out
}
