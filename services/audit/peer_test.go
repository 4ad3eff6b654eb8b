package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/services/audit"
)

// memPeers is a PeerStore holding one origin's records and no checkpoint.
type memPeers struct{ recs []audit.Record }

func (m memPeers) AppendPeer(context.Context, audit.PeerBatch) (audit.PeerAppended, error) {
	return audit.PeerAppended{}, nil
}
func (m memPeers) Peers(context.Context) ([]audit.Peer, error) { return nil, nil }
func (m memPeers) ScanPeerRecords(_ context.Context, _ string, fn func(r *audit.Record) error) error {
	for i := range m.recs {
		if err := fn(&m.recs[i]); err != nil {
			return err
		}
	}
	return nil
}
func (m memPeers) PeerCheckpoints(context.Context, string) ([]audit.Checkpoint, error) {
	return nil, nil
}
func (m memPeers) PrunePeer(context.Context, string, int64, int64, []audit.SubtreeHash) error {
	return audit.ErrPeerPruned
}

// TestVerifyPeerFailsClosed (sec28b H3): records nobody signed (made up by
// the peer or in level 1's database) never verify OK: without keys they
// are not verified, with keys but no checkpoint "not verified yet".
func TestVerifyPeerFailsClosed(t *testing.T) {
	st := memPeers{recs: []audit.Record{
		{Seq: 0, EventID: "forged-1", Type: "uias.audit", Component: "identity", Time: time.Now().UTC(), API: "sso.login",
			Subject: "user:l1-admin", Result: "success", Reason: "OK"},
		{Seq: 1, EventID: "forged-2", Type: "uias.audit", Component: "identity", Time: time.Now().UTC(), API: "user.delete",
			Actor: "user:someone", Subject: "user:x", Result: "success", Reason: "OK"},
	}}
	p := audit.Peer{Origin: "l2a.audit", Size: 2}
	rep, err := audit.VerifyPeer(context.Background(), st, p, nil)
	if err != nil || rep.OK() || !rep.Problem.Unverified || !strings.Contains(rep.Problem.What, "no verifier keys") {
		t.Fatalf("no keys: %+v %v", rep, err)
	}
	known, err := audit.VerifiersFromKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = audit.VerifyPeer(context.Background(), st, p, known)
	if err != nil || rep.OK() || !rep.Problem.Unverified || !strings.Contains(rep.Problem.What, "not verified yet") || rep.Records != 2 {
		t.Fatalf("no checkpoint: %+v %v", rep, err)
	}
	// Nothing held at all is not verified either.
	rep, err = audit.VerifyPeer(context.Background(), memPeers{}, audit.Peer{Origin: "l2a.audit"}, known)
	if err != nil || rep.OK() {
		t.Fatalf("nothing held: %+v %v", rep, err)
	}
}
