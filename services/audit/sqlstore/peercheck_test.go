package sqlstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

// TestNoPeersIsKeptAMinute (review rr29 C1): a store that found no peer
// logs held reads its own table without looking again for PeerRecheck;
// peer records another instance stores meanwhile show after that, and
// the instance that stores them reads them at once.
func TestNoPeersIsKeptAMinute(t *testing.T) {
	for name, db := range pstoretest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := sqlstore.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
			var clock atomic.Pointer[time.Time]
			clock.Store(&at)
			st, other := sqlstore.New(db), sqlstore.New(db)
			sqlstore.SetClock(st, func() time.Time { return *clock.Load() })
			for _, s := range []*sqlstore.Store{st, other} {
				s.SetLocalOrigin("l1.audit")
			}
			if _, err := audit.NewLog(st, storetest.Signer(t), audit.LogOptions{}).Append(ctx, storetest.Records("own", 3)); err != nil {
				t.Fatal(err)
			}
			count := func(s *sqlstore.Store) int {
				t.Helper()
				recs, _, err := s.QueryRecords(ctx, audit.Query{PageSize: 50})
				if err != nil {
					t.Fatal(err)
				}
				return len(recs)
			}
			if n := count(st); n != 3 {
				t.Fatalf("own records: %d", n)
			}
			peer := storetest.Records("peer", 4)
			for i := range peer {
				peer[i].Seq = int64(i)
			}
			if _, err := other.AppendPeer(ctx, audit.PeerBatch{Origin: "l2a.audit", Records: peer, At: at}); err != nil {
				t.Fatal(err)
			}
			if n := count(other); n != 7 {
				t.Fatalf("the instance that stored the peer records reads %d, want 7", n)
			}
			later := at.Add(sqlstore.PeerRecheck - time.Second)
			clock.Store(&later)
			if n := count(st); n != 3 {
				t.Fatalf("within PeerRecheck of finding none: %d records read, want 3 (the check ran again)", n)
			}
			due := at.Add(sqlstore.PeerRecheck)
			clock.Store(&due)
			if n := count(st); n != 7 {
				t.Fatalf("after PeerRecheck: %d records read, want 7", n)
			}
		})
	}
}
