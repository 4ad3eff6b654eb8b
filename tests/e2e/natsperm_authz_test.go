package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/discovery/etcdtest"
	"github.com/uias/uias/pkg/events"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// TestNATSPermissionsOfAuthz: identity and authz in two processes, each
// with its own user of the deployed NATS configuration (deploy/nats), do
// everything they do over NATS without a single permission violation:
// authz loads its index and follows identity's org, person and group
// changes (an ordered consumer on CHANGES), publishes its changes
// (uias.changes.authz.>, heard by identity and by itself) and its access
// records (uias.audit.authz.>), and says it has applied an org moved out
// of an administrator's subtree (uias.authz.mirrored, heard by identity,
// which then refuses at once). The authz user is refused what would forge
// another component's events or lose events.
func TestNATSPermissionsOfAuthz(t *testing.T) {
	d, pn := newPermDeployment(t)
	srvLog := &serverLog{}
	pn.server.SetLogger(srvLog, false, false)
	idCfg := d.config("identity", "identity")
	idCfg.NATS.NKeySeedFile = pn.identity.NKeySeedFile
	makeKeyRing(t, idCfg)
	identitycomponent.Settings(&idCfg).AdminDecisionTTL = 10 * time.Second
	azCfg := d.config("authz", "authz")
	azCfg.NATS.NKeySeedFile = pn.authz.NKeySeedFile
	id, az := start(t, idCfg), start(t, azCfg)

	// Grants made on authz reach identity; authz follows identity's
	// changes (pat administers carol's org); the mirror announcement.
	w := newCacheWorld(t, id, az)
	mirrorAcross(t, w, az)
	verifier := id.app.Value(identitycomponent.Name).(*identitycomponent.Handle).Admins
	r, err := w.adm.RevokeGrant(w.e.adm(), &authzv1.RevokeGrantRequest{Id: w.westGrant})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "identity to hear the revocation's revision (uias.changes.authz.>)", func() bool {
		return verifier.SeenRevision() >= r.GetRevision()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	setupJS, _, _ := (&permTest{permNATS: pn}).user(t, pn.setup, "setup")
	stored := func(stream, subjects string) int {
		s, err := setupJS.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subjects))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range info.State.Subjects {
			n += int(c)
		}
		return n
	}
	eventually(t, "authz's changes in CHANGES", func() bool { return stored(events.StreamChanges, "uias.changes.authz.>") >= 3 })
	eventually(t, "authz's access records in AUDIT", func() bool { return stored(events.StreamAudit, "uias.audit.authz.>") > 0 })
	// Only the two processes and the setup user have connected so far.
	if v := srvLog.violations(); len(v) > 0 {
		t.Errorf("the processes were refused by the deployed NATS permissions:\n%s", strings.Join(v, "\n"))
	}

	azJS, _, viol := (&permTest{permNATS: pn}).user(t, pn.authz, "authz")
	attacks := append(streamAttacks(azJS, events.StreamConfigs()[0]), streamAttacks(azJS, events.StreamConfigs()[1])...)
	attacks = append(attacks,
		natsAttack{"forge an identity change", "uias.changes.identity.org.moved", func(ctx context.Context) error {
			_, err := azJS.Publish(ctx, "uias.changes.identity.org.moved", []byte(`{"id":"o1"}`))
			return err
		}},
		natsAttack{"forge an identity audit record", "uias.audit.identity.login", func(ctx context.Context) error {
			_, err := azJS.Publish(ctx, "uias.audit.identity.login", []byte(`{}`))
			return err
		}},
		natsAttack{"delete CHANGES", "$JS.API.STREAM.DELETE.CHANGES", func(ctx context.Context) error {
			return azJS.DeleteStream(ctx, events.StreamChanges)
		}},
		natsAttack{"create a stream", "$JS.API.STREAM.CREATE.OTHER", func(ctx context.Context) error {
			_, err := azJS.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}})
			return err
		}},
	)
	wantRefused(t, ctx, "authz", viol, attacks)
}

// newPermDeployment is newDeployment with the NATS server of the deployed
// configuration (startPermNATS), its streams made by the setup user: each
// process then connects with its component's user.
func newPermDeployment(t *testing.T) (*deployment, *permNATS) {
	t.Helper()
	d := &deployment{dir: t.TempDir()}
	etcd, endpoints, err := etcdtest.Start(filepath.Join(d.dir, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	d.endpoints = endpoints
	pn := startPermNATS(t, filepath.Join(d.dir, "nats"))
	d.nats = pn.server
	setupJS, _, _ := (&permTest{permNATS: pn}).user(t, pn.setup, "setup")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, setupJS); err != nil { // uias nats setup
		t.Fatal(err)
	}
	return d, pn
}

// serverLog is a NATS server logger keeping the permission violations the
// server reports (each line names the client, "uias-<target>", and the
// subject).
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) Noticef(string, ...any) {}
func (l *serverLog) Warnf(string, ...any)   {}
func (l *serverLog) Fatalf(string, ...any)  {}
func (l *serverLog) Debugf(string, ...any)  {}
func (l *serverLog) Tracef(string, ...any)  {}
func (l *serverLog) Errorf(format string, v ...any) {
	if line := fmt.Sprintf(format, v...); strings.Contains(line, "Violation") {
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
	}
}

// violations are the violations the server reported.
func (l *serverLog) violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}
