package storetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
)

// localOriginSetter is a store that names its own log (sqlstore).
type localOriginSetter interface{ SetLocalOrigin(string) }

// testPeers: the logs of peer centres (ADR 0029) are stored per origin,
// exactly once by seq with the cursor; each verifies against its own
// signed checkpoints, a record changed in the database fails it; queries
// take every origin or one, each record naming its origin.
func testPeers(t *testing.T, s Subject) {
	ctx := context.Background()
	ps, ok := s.Store.(audit.PeerStore)
	if !ok {
		t.Skip("the store keeps no peer logs")
	}
	if ls, ok := s.Store.(localOriginSetter); ok {
		ls.SetLocalOrigin("l1.audit")
	}
	// The "peer" log is built on this store's own log (its signer's
	// origin), then handed to AppendPeer as level 1 receives it.
	l, _ := newLog(t, s, 4)
	peer := l.Signer().Origin()
	all := Records("peer", 10)
	for _, part := range [][]audit.Record{all[:4], all[4:8], all[8:]} {
		appendAll(t, l, part)
	}
	var recs []audit.Record
	if err := s.Store.ScanRecords(ctx, 0, func(r *audit.Record) error { recs = append(recs, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	var cps []audit.Checkpoint
	if err := s.Store.Checkpoints(ctx, func(c *audit.Checkpoint) error {
		cp, err := audit.CheckpointOf(peer, c.Note) // as received: from the note
		if err != nil {
			return err
		}
		cps = append(cps, cp)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 10 || len(cps) != 2 {
		t.Fatalf("peer log: %d records, %d checkpoints", len(recs), len(cps))
	}
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	res, err := ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: recs[:6], Checkpoints: cps[:1], At: at})
	if err != nil || res.Added != 6 || res.Checkpoints != 1 || res.Size != 6 {
		t.Fatalf("first batch: %+v %v", res, err)
	}
	// Redelivered with more: the known records and checkpoint are skipped.
	res, err = ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: recs[3:], Checkpoints: cps, At: at})
	if err != nil || res.Added != 4 || res.Duplicates != 3 || res.Checkpoints != 1 || res.Size != 10 {
		t.Fatalf("redelivered batch: %+v %v", res, err)
	}
	// A gap stores nothing, not even the cursor.
	gap := recs[9]
	gap.Seq = 12
	if _, err := ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: []audit.Record{gap}, At: at}); !errors.Is(err, audit.ErrPeerGap) {
		t.Fatalf("a gap: %v", err)
	}
	peers, err := ps.Peers(ctx)
	if err != nil || len(peers) != 1 {
		t.Fatalf("peers %+v %v", peers, err)
	}
	if p := peers[0]; p.Origin != peer || p.First != 0 || p.Size != 10 || p.Checkpoints != 2 || p.Signed != 8 ||
		!p.LastRecord.Equal(recs[9].Time) || !p.LastReceived.Equal(at) {
		t.Fatalf("peer %+v", p)
	}

	rep, err := audit.VerifyPeer(ctx, ps, peers[0], mustVerifiers(t, l))
	if err != nil || !rep.OK() || rep.Records != 10 || rep.Checkpoints != 2 || rep.Signed != 8 {
		t.Fatalf("verify peer: %+v %v", rep, err)
	}
	if rep, err := audit.VerifyPeer(ctx, ps, peers[0], nil); err != nil || rep.OK() || !rep.Problem.Unverified {
		t.Fatalf("verify peer without its keys: %+v %v", rep, err)
	}

	// Queries: all origins (own and peer, 20), one page at a time.
	seen := map[string]int{}
	token := ""
	for range 10 {
		qs, ok := s.Store.(audit.QueryStore)
		if !ok {
			t.Skip("no queries")
		}
		page, next, err := qs.QueryRecords(ctx, audit.Query{PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			seen[r.Origin+"/"+r.EventID]++
		}
		if token = next; token == "" {
			break
		}
	}
	if len(seen) != 20 || seen[peer+"/peer-4"] != 1 || seen["l1.audit/peer-4"] != 1 {
		t.Fatalf("all origins, paged: %v", seen)
	}
	qs := s.Store.(audit.QueryStore)
	only, _, err := qs.QueryRecords(ctx, audit.Query{Origin: peer, Subject: "user:u1", PageSize: 50})
	if err != nil || len(only) != 2 || only[0].Origin != peer || only[0].EventID != "peer-8" {
		t.Fatalf("one origin: %+v %v", only, err)
	}
	own, _, err := qs.QueryRecords(ctx, audit.Query{Origin: "l1.audit", PageSize: 50})
	if err != nil || len(own) != 10 || own[0].Origin != "l1.audit" {
		t.Fatalf("own origin: %d %v", len(own), err)
	}
	if an, ok := s.Store.(analytics.Store); ok {
		last, err := an.LatestPerSubject(ctx, analytics.Filter{Subject: "user:u1", Origin: peer}, time.Time{}, 10)
		if err != nil || len(last) != 1 || !last[0].Time.Equal(recs[8].Time) {
			t.Fatalf("latest per subject of the peer: %+v %v", last, err)
		}
	}

	testPeerUnion(t, s, peer)

	// A record of the peer changed in level 1's database fails its tree.
	s.Exec(t, "UPDATE audit_peer_records SET actor = ? WHERE origin = ? AND seq = ?", "app:forged", peer, 3)
	rep, err = audit.VerifyPeer(ctx, ps, peers[0], mustVerifiers(t, l))
	if err != nil || rep.OK() || rep.Problem.Checkpoint != 4 || rep.Problem.Unverified {
		t.Fatalf("verify a changed peer record: %+v %v", rep, err)
	}
	// ... and never its own log.
	if rep, err := audit.Verify(ctx, s.Store, peer, mustVerifiers(t, l)); err != nil || !rep.OK() {
		t.Fatalf("own log after the peer's was changed: %+v %v", rep, err)
	}

	// Online now from this centre's SSO sessions adds the people online by
	// the peer log's recent logins (their sessions are at their centre).
	if an, ok := s.Store.(analytics.Store); ok {
		// u6 is homed at level 1: the peer's record of their login is not
		// counted (sec28b M1)
		homes := homesOf{"u0": peer, "u2": peer, "u3": peer}
		a := analytics.New(an, analytics.Options{Now: func() time.Time { return recs[9].Time.Add(time.Minute) },
			Sessions: oneSession{}, PeerOrigins: []string{peer}, LocalOrigin: "l1.audit", People: homes})
		on, err := a.OnlineNow(ctx, audit.Scope{All: true}, 30*time.Minute, 0, false)
		got := map[string]bool{}
		for _, p := range on.People {
			got[p.Subject] = true
		}
		// successful logins of the peer: records 0, 3, 6 and 9 (u0, u3, u6, u2)
		if err != nil || on.Source != analytics.SourceTicketAndLogins || len(on.People) != 4 || !got["user:here"] || !got["user:u0"] ||
			!got["user:u2"] || got["user:u1"] || got["user:u6"] {
			t.Fatalf("online now with the peer's logins: %+v %v", on, err)
		}
	}
}

// testPeerUnion (review rr29 B12): the reads over every origin held
// (own and peer, 10 records each) count, group, follow and export both:
// CountRecords, analytics CountBy and Timelines, ExportRecords (CSV, each
// row naming its origin); with Origin set, one origin only.
func testPeerUnion(t *testing.T, s Subject, peer string) {
	t.Helper()
	ctx := context.Background()
	sum := func(cs []audit.Count) (n int64) {
		for _, c := range cs {
			n += c.Count
		}
		return n
	}
	if rs, ok := s.Store.(audit.CountStore); ok {
		all, err := rs.CountRecords(ctx, audit.CountQuery{By: audit.ByAPI, Limit: 100})
		if err != nil || sum(all) != 20 {
			t.Fatalf("CountRecords over every origin: %d %v (want 20)", sum(all), err)
		}
		one, err := rs.CountRecords(ctx, audit.CountQuery{By: audit.ByAPI, Limit: 100, Filter: audit.Query{Origin: peer}})
		if err != nil || sum(one) != 10 {
			t.Fatalf("CountRecords of the peer: %d %v (want 10)", sum(one), err)
		}
	}
	if an, ok := s.Store.(analytics.Store); ok {
		for origin, want := range map[string]int64{"": 20, peer: 10, "l1.audit": 10} {
			cb, err := an.CountBy(ctx, analytics.Filter{Origin: origin}, analytics.BySubject, 0, 100)
			var n int64
			for _, c := range cb {
				n += c.Count
			}
			if err != nil || n != want {
				t.Fatalf("CountBy of origin %q: %d %v (want %d)", origin, n, err, want)
			}
			k := int64(0)
			if _, err := an.Timelines(ctx, analytics.Filter{Origin: origin}, 100, func(analytics.LastSeen) error { k++; return nil }); err != nil || k != want {
				t.Fatalf("Timelines of origin %q: %d %v (want %d)", origin, k, err, want)
			}
		}
	}
	if qs, ok := s.Store.(audit.QueryStore); ok {
		var b strings.Builder
		n, err := audit.ExportRecords(ctx, qs, audit.Scope{All: true}, audit.Query{}, 0, audit.CSV, &b)
		if err != nil || n != 20 || strings.Count(b.String(), ","+peer) != 10 || strings.Count(b.String(), ",l1.audit") != 10 {
			t.Fatalf("export of every origin: %d %v\n%s", n, err, b.String())
		}
		b.Reset()
		if n, err := audit.ExportRecords(ctx, qs, audit.Scope{All: true}, audit.Query{Origin: peer}, 0, audit.CSV, &b); err != nil || n != 10 {
			t.Fatalf("export of the peer: %d %v", n, err)
		}
	}
}

// homesOf is a PeopleSource over fixed people (id: home origin) that
// tells their homes (analytics.HomeSource).
type homesOf map[string]string

func (h homesOf) People(_ context.Context, _ []string, fn func([]analytics.Person) error) error {
	var page []analytics.Person
	for id, home := range h {
		page = append(page, analytics.Person{ID: id, Login: id, Org: "org-1", Home: home})
	}
	return fn(page)
}

func (h homesOf) HomeOrigins(_ context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, id := range ids {
		if o, ok := h[id]; ok {
			out[id] = o
		}
	}
	return out, nil
}

// testPeersBound (sec28b M1): a peer's log may write about anyone, and
// its records verify (it signs them); level 1 counts a peer's login
// records only for the people homed at that peer: a level-2 record of a
// level-1 administrator's login shows in no report as their login (the
// record itself stays held and queryable, by its origin, as evidence).
func testPeersBound(t *testing.T, s Subject) {
	ctx := context.Background()
	ps, ok := s.Store.(audit.PeerStore)
	an, ok2 := s.Store.(analytics.Store)
	if !ok || !ok2 {
		t.Skip("the store keeps no peer logs")
	}
	if ls, ok := s.Store.(localOriginSetter); ok {
		ls.SetLocalOrigin("l1.audit")
	}
	const peer = "l2a.audit"
	recs := Records("l2a", 2)
	for i, who := range []string{"l1-admin", "l2a-person"} {
		recs[i].Seq, recs[i].Subject, recs[i].Result, recs[i].API = int64(i), "user:"+who, "success", "authenticate"
	}
	if _, err := ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: recs}); err != nil {
		t.Fatal(err)
	}
	people := homesOf{"l1-admin": "", "l2a-person": peer}
	now := recs[1].Time.Add(time.Minute)
	a := analytics.New(an, analytics.Options{Now: func() time.Time { return now }, PeerOrigins: []string{peer},
		LocalOrigin: "l1.audit", People: people})

	// absence: the administrator never logged in (here), the l2a person did
	now = recs[1].Time.Add(3 * 24 * time.Hour)
	abs, err := a.AbsenceReport(ctx, audit.Scope{All: true}, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]analytics.Absence{}
	for _, p := range abs.People {
		got[p.Subject] = p
	}
	if len(got) != 2 || !got["user:l1-admin"].Never || got["user:l2a-person"].Never {
		t.Fatalf("absence: %+v", abs)
	}
	// online from the logins: the l2a person only
	now = recs[1].Time.Add(time.Minute)
	on, _, err := a.OnlineFromLogins(ctx, audit.Scope{All: true}, 30*time.Minute, 0)
	if err != nil || len(on) != 1 || on[0].Subject != "user:l2a-person" {
		t.Fatalf("online from logins: %+v %v", on, err)
	}
	// login history: none for the administrator, one for the l2a person
	for who, want := range map[string]int{"l1-admin": 0, "l2a-person": 1} {
		h, _, err := a.LoginHistory(ctx, audit.Scope{All: true}, who, analytics.Range{}, 0, "")
		if err != nil || len(h) != want {
			t.Fatalf("login history of %s: %+v %v", who, h, err)
		}
	}
	// without the people's homes, no peer login counts
	b := analytics.New(an, analytics.Options{Now: func() time.Time { return now }, PeerOrigins: []string{peer},
		LocalOrigin: "l1.audit", Sessions: oneSession{}})
	if o, err := b.OnlineNow(ctx, audit.Scope{All: true}, 30*time.Minute, 0, false); err != nil || len(o.People) != 1 ||
		o.Source != analytics.SourceTicket {
		t.Fatalf("online now without homes: %+v %v", o, err)
	}
	if h, _, err := b.LoginHistory(ctx, audit.Scope{All: true}, "l2a-person", analytics.Range{}, 0, ""); err != nil || len(h) != 0 {
		t.Fatalf("login history without homes: %+v %v", h, err)
	}
}

// oneSession is the SSO sessions of a centre where one person is online.
type oneSession struct{}

func (oneSession) Online(context.Context, int) ([]analytics.LastSeen, bool, error) {
	return []analytics.LastSeen{{Subject: "user:here", Org: "org-1"}}, false, nil
}

// peerLog builds a peer log of n records with a checkpoint every 4 on a
// log of s (its records and checkpoints as level 1 receives them).
func peerLog(t *testing.T, s Subject, n int) (*audit.Log, []audit.Record, []audit.Checkpoint) {
	t.Helper()
	ctx := context.Background()
	l, _ := newLog(t, s, 4)
	all := Records("peer", n)
	for i := 0; i < n; i += 4 {
		appendAll(t, l, all[i:min(i+4, n)])
	}
	var recs []audit.Record
	if err := s.Store.ScanRecords(ctx, 0, func(r *audit.Record) error { recs = append(recs, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	var cps []audit.Checkpoint
	if err := s.Store.Checkpoints(ctx, func(c *audit.Checkpoint) error {
		cp, err := audit.CheckpointOf(l.Signer().Origin(), c.Note)
		cps = append(cps, cp)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return l, recs, cps
}

// testPeersFailClosed (sec28b H3): a peer log verifies OK only with its
// keys and a signed checkpoint over what is held; no keys, no checkpoint
// yet, or records missing after a signed checkpoint (a cut tail) are
// never OK.
func testPeersFailClosed(t *testing.T, s Subject) {
	ctx := context.Background()
	ps, ok := s.Store.(audit.PeerStore)
	if !ok {
		t.Skip("the store keeps no peer logs")
	}
	if ls, ok := s.Store.(localOriginSetter); ok {
		ls.SetLocalOrigin("l1.audit")
	}
	l, recs, cps := peerLog(t, s, 10)
	peer := l.Signer().Origin()
	known := mustVerifiers(t, l)
	if len(cps) != 2 || cps[1].Size != 8 {
		t.Fatalf("checkpoints %+v", cps)
	}
	verify := func(known note.Verifiers) *audit.Report {
		t.Helper()
		peers, err := ps.Peers(ctx)
		if err != nil || len(peers) != 1 {
			t.Fatalf("peers %+v %v", peers, err)
		}
		rep, err := audit.VerifyPeer(ctx, ps, peers[0], known)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	// Records held, no checkpoint yet: not verified yet, with or without keys.
	if _, err := ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: recs[:3]}); err != nil {
		t.Fatal(err)
	}
	if rep := verify(known); rep.OK() || !rep.Problem.Unverified || !strings.Contains(rep.Problem.What, "not verified yet") {
		t.Fatalf("no checkpoint yet, with keys: %+v %+v", rep, rep.Problem)
	}
	if rep := verify(nil); rep.OK() || !rep.Problem.Unverified || !strings.Contains(rep.Problem.What, "no verifier keys") {
		t.Fatalf("no checkpoint yet, no keys: %+v %+v", rep, rep.Problem)
	}

	// The whole log: OK with its keys, never without them.
	if _, err := ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: recs[3:], Checkpoints: cps}); err != nil {
		t.Fatal(err)
	}
	if rep := verify(known); !rep.OK() || rep.Records != 10 || rep.Signed != 8 {
		t.Fatalf("whole peer log: %+v %+v", rep, rep.Problem)
	}
	if rep := verify(nil); rep.OK() || !rep.Problem.Unverified {
		t.Fatalf("whole peer log without keys: %+v", rep)
	}

	// Rows removed at level 1 past a record (size not changed): missing.
	s.Exec(t, "DELETE FROM audit_peer_records WHERE origin = ? AND seq >= ?", peer, 9)
	if rep := verify(known); rep.OK() || rep.Problem.Unverified || rep.Problem.Seq != 9 || rep.Problem.Checkpoint != 0 {
		t.Fatalf("last record removed: %+v %+v", rep, rep.Problem)
	}
	// The tail cut below the signed checkpoint of size 8, the count too.
	s.Exec(t, "DELETE FROM audit_peer_records WHERE origin = ? AND seq >= ?", peer, 5)
	s.Exec(t, "UPDATE audit_peers SET size = ? WHERE origin = ?", 5, peer)
	rep := verify(known)
	if rep.OK() || rep.Problem.Unverified || rep.Problem.Seq != 5 || rep.Problem.Checkpoint != 8 ||
		!strings.Contains(rep.Problem.What, "missing") {
		t.Fatalf("tail cut below a signed checkpoint: %+v %+v", rep, rep.Problem)
	}
}

// testPeersGaps (sec28b M3, L5): a gap is refused unless skipped, then
// reported; a skipped record stored when it comes; a record re-sent under
// a number held with another event id is a conflict, not stored.
func testPeersGaps(t *testing.T, s Subject) {
	ctx := context.Background()
	ps, ok := s.Store.(audit.PeerStore)
	if !ok {
		t.Skip("the store keeps no peer logs")
	}
	const peer = "l2a.audit"
	recs := Records("l2a", 6)
	for i := range recs {
		recs[i].Seq = int64(i)
	}
	if _, err := ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: recs[:2]}); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: recs[4:]}); !errors.Is(err, audit.ErrPeerGap) {
		t.Fatalf("a gap: %v", err)
	}
	res, err := ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: recs[4:], SkipGap: true})
	if err != nil || res.Added != 2 || res.Size != 6 || len(res.Skipped) != 1 || res.Skipped[0] != (audit.SeqRange{From: 2, To: 4}) {
		t.Fatalf("a gap skipped: %+v %v", res, err)
	}
	other := recs[1]
	other.EventID = "rewritten"
	res, err = ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: []audit.Record{recs[2], other, recs[3], recs[5]}})
	if err != nil || res.Added != 2 || res.Duplicates != 2 || !slices.Equal(res.Conflicts, []int64{1}) || res.Size != 6 {
		t.Fatalf("gap filled, a conflict: %+v %v", res, err)
	}
	n := 0
	if err := ps.ScanPeerRecords(ctx, peer, func(r *audit.Record) error {
		if r.Seq != int64(n) || r.EventID != recs[n].EventID {
			t.Errorf("record %d held: %s", r.Seq, r.EventID)
		}
		n++
		return nil
	}); err != nil || n != 6 {
		t.Fatalf("held %d %v", n, err)
	}
}

// testPeersRetention (ADR 0029 amendment 2): level 1 archives and removes
// a peer's records past the retention, only up to a checkpoint of the
// peer and only from a log that verifies; the archives verify with the
// peer's keys, the records still held verify against the peer's later
// checkpoints from the tree hashes kept, records re-sent from before are
// not stored again, and each archive is recorded in level 1's own log.
func testPeersRetention(t *testing.T, s Subject) {
	ctx := context.Background()
	ps, ok := s.Store.(audit.PeerStore)
	if !ok {
		t.Skip("the store keeps no peer logs")
	}
	if ls, ok := s.Store.(localOriginSetter); ok {
		ls.SetLocalOrigin("l1.audit")
	}
	l, recs, cps := peerLog(t, s, 17)
	peer := l.Signer().Origin()
	known := mustVerifiers(t, l)
	if len(cps) != 4 || cps[3].Size != 16 {
		t.Fatalf("checkpoints %+v", cps)
	}
	at := recs[0].Time
	if _, err := ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: recs[:13], Checkpoints: cps[:3], At: at}); err != nil {
		t.Fatal(err)
	}
	held := func() audit.Peer {
		t.Helper()
		peers, err := ps.Peers(ctx)
		if err != nil || len(peers) != 1 {
			t.Fatalf("peers %+v %v", peers, err)
		}
		return peers[0]
	}
	dir := t.TempDir()
	keep := time.Hour
	pr := func(p audit.Peer) audit.PeerRetention {
		return audit.PeerRetention{Peer: p, Known: known, Keys: l.Signer().VerifierKeys()}
	}
	// A stop between writing an archive and removing its records left a
	// file (here: a partial one): the next pass makes it again. Peer
	// archives are named apart from this centre's own (".peer").
	left := filepath.Join(dir, "audit-"+strings.ReplaceAll(peer, "/", "_")+"-000000000000-000000000004.peer.jsonl")
	if err := os.WriteFile(left, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Records 0-9 are past the retention: up to the checkpoint of 8, in
	// archives of at most 5 records (so: 0-3, then 4-7).
	now := recs[10].Time.Add(keep)
	var files []string
	for i, want := range []int64{4, 8} {
		a, err := l.ApplyPeerRetention(ctx, ps, pr(held()), audit.Retention{Keep: keep, Dir: dir, MaxPerArchive: 5}, now)
		if err != nil || a == nil || a.To != want || a.CheckpointSize != want {
			t.Fatalf("pass %d: %+v %v", i, a, err)
		}
		files = append(files, a.File)
		if i == 0 && a.File != left {
			t.Fatalf("first archive %s, want %s made again", a.File, left)
		}
		p := held()
		if p.First != want || len(p.Frontier) != 1 || p.Frontier[0].Lo != 0 || p.Frontier[0].Hi != want {
			t.Fatalf("after pass %d: %+v", i, p)
		}
		rep, err := audit.VerifyPeer(ctx, ps, p, known)
		if err != nil || !rep.OK() || rep.Records != 13-want || rep.Archived != want || rep.Signed != 12 || rep.Checkpoints != 3 {
			t.Fatalf("verify after pass %d: %+v %v", i, rep, err)
		}
	}
	if a, err := l.ApplyPeerRetention(ctx, ps, pr(held()), audit.Retention{Keep: keep, Dir: dir, MaxPerArchive: 5}, now); err != nil || a != nil {
		t.Fatalf("nothing more is due: %+v %v", a, err)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.VerifyArchive(fh, known)
		fh.Close()
		if err != nil || rep.Problem != nil || rep.Header.Origin != peer {
			t.Fatalf("archive %s: %+v %v", f, rep, err)
		}
	}
	// Records re-sent from before the first held are not stored again.
	res, err := ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: recs[2:6], At: at})
	if err != nil || res.Added != 0 || res.Duplicates != 4 {
		t.Fatalf("old records re-sent: %+v %v", res, err)
	}
	// Later: up to 12 (the frontier is no power of two), then the peer's
	// next records and checkpoint verify on it.
	a, err := l.ApplyPeerRetention(ctx, ps, pr(held()), audit.Retention{Keep: keep, Dir: dir}, recs[16].Time.Add(keep))
	if err != nil || a == nil || a.From != 8 || a.To != 12 {
		t.Fatalf("to 12: %+v %v", a, err)
	}
	if _, err := ps.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: recs[13:], Checkpoints: cps[3:], At: at}); err != nil {
		t.Fatal(err)
	}
	p := held()
	if p.First != 12 || len(p.Frontier) != 2 {
		t.Fatalf("frontier of 12: %+v", p)
	}
	if rep, err := audit.VerifyPeer(ctx, ps, p, known); err != nil || !rep.OK() || rep.Records != 5 || rep.Signed != 16 {
		t.Fatalf("verify on the frontier of 12: %+v %v", rep, err)
	}
	// Each archive is recorded in level 1's own log, naming the origin.
	var recorded []string
	if err := s.Store.ScanRecords(ctx, 0, func(r *audit.Record) error {
		if audit.IsArchiveRecord(r) && r.Detail["origin"] == peer && r.Reason == audit.ReasonRetention {
			recorded = append(recorded, r.Detail["from"]+"-"+r.Detail["to"])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recorded, []string{"0-4", "4-8", "8-12"}) {
		t.Fatalf("archives recorded: %v", recorded)
	}

	// A held record changed here: the log is kept whole, the problem said.
	s.Exec(t, "UPDATE audit_peer_records SET actor = ? WHERE origin = ? AND seq = ?", "app:forged", peer, 13)
	if a, err := l.ApplyPeerRetention(ctx, ps, pr(p), audit.Retention{Keep: keep, Dir: dir}, recs[16].Time.Add(2*keep)); err == nil || a != nil ||
		!strings.Contains(err.Error(), "kept whole") {
		t.Fatalf("a changed log: %+v %v", a, err)
	}
	// Without the peer's keys nothing is removed either.
	if a, err := l.ApplyPeerRetention(ctx, ps, audit.PeerRetention{Peer: p}, audit.Retention{Keep: keep, Dir: dir},
		recs[16].Time.Add(2*keep)); err == nil || a != nil {
		t.Fatalf("no keys: %+v %v", a, err)
	}
	if held().First != 12 {
		t.Fatalf("records removed from a log that does not verify: %+v", held())
	}
}
