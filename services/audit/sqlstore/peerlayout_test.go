package sqlstore_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/store"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit/sqlstore"
)

// TestPeerTablesMatchTheOwn (review rr29 B11, C4, B2): on SQLite and
// PostgreSQL, after the migrations,
//   - audit_peer_records has every column of audit_records, of the same
//     type, and origin besides (the union reads select recordCols from
//     both);
//   - every query index of audit_records has a peer twin whose leading
//     columns are the same up to the time (an app_id or client_ip filter
//     on the peer table is a search, not a scan);
//   - audit_peers keeps no stream position (the durable consumer's alone).
func TestPeerTablesMatchTheOwn(t *testing.T) {
	for name, db := range pstoretest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := sqlstore.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			own, peer := tableColumns(t, db, "audit_records"), tableColumns(t, db, "audit_peer_records")
			if peer["origin"] == "" {
				t.Error("audit_peer_records has no origin")
			}
			for c, typ := range own {
				if peer[c] != typ {
					t.Errorf("column %s: %q in audit_records, %q in audit_peer_records", c, typ, peer[c])
				}
			}
			for c := range peer {
				if own[c] == "" && c != "origin" {
					t.Errorf("column %s of audit_peer_records is not in audit_records", c)
				}
			}
			peerIdx := tableIndexes(t, db, "audit_peer_records")
			for name, cols := range tableIndexes(t, db, "audit_records") {
				lead := cols[:len(cols)-1] // without seq: the peer's order is (time, origin, seq)
				if cols[len(cols)-1] != "seq" {
					lead = cols
				}
				if !slices.ContainsFunc(slices.Collect(maps.Values(peerIdx)), func(p []string) bool {
					return len(p) >= len(lead) && slices.Equal(p[:len(lead)], lead)
				}) {
					t.Errorf("index %s %v of audit_records has no twin on audit_peer_records (%v)", name, cols, peerIdx)
				}
			}
			if db.Dialect == store.SQLite {
				for _, col := range []string{"app_id", "client_ip"} {
					plan := queryPlan(t, db, "SELECT seq FROM audit_peer_records WHERE "+col+" = ? ORDER BY time_ms DESC LIMIT 10", "x")
					if !strings.Contains(plan, "audit_peer_records_") || strings.Contains(plan, "SCAN") {
						t.Errorf("a filter on %s scans the peer records: %s", col, plan)
					}
				}
			}
			if c := tableColumns(t, db, "audit_peers"); c["stream_seq"] != "" {
				t.Error("audit_peers still keeps a stream position (stream_seq)")
			}
		})
	}
}

// queryPlan is SQLite's plan of q, its details joined.
func queryPlan(t *testing.T, db *store.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, detail)
	}
	return strings.Join(out, "; ")
}

// tableColumns is table's columns and their types, lower case.
func tableColumns(t *testing.T, db *store.DB, table string) map[string]string {
	t.Helper()
	q := "SELECT name, type FROM pragma_table_info(?) ORDER BY cid"
	if db.Dialect == store.Postgres {
		q = "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema()"
	}
	rows, err := db.QueryContext(context.Background(), q, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, typ string
		if err := rows.Scan(&n, &typ); err != nil {
			t.Fatal(err)
		}
		out[strings.ToLower(n)] = strings.ToLower(typ)
	}
	if err := rows.Err(); err != nil || len(out) == 0 {
		t.Fatalf("columns of %s: %v %v", table, out, err)
	}
	return out
}

// tableIndexes is table's indexes other than its primary key, by name,
// with their columns in order.
func tableIndexes(t *testing.T, db *store.DB, table string) map[string][]string {
	t.Helper()
	q := "SELECT il.name, ii.name FROM pragma_index_list(?) il, pragma_index_info(il.name) ii WHERE il.origin = 'c' " +
		"ORDER BY il.name, ii.seqno"
	if db.Dialect == store.Postgres {
		q = "SELECT i.relname, a.attname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid " +
			"JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) ON true " +
			"JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum " +
			"WHERE x.indrelid = $1::regclass AND NOT x.indisprimary AND NOT x.indisunique ORDER BY i.relname, k.ord"
	}
	rows, err := db.QueryContext(context.Background(), q, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var idx, col string
		if err := rows.Scan(&idx, &col); err != nil {
			t.Fatal(err)
		}
		out[idx] = append(out[idx], col)
	}
	if err := rows.Err(); err != nil || len(out) == 0 {
		t.Fatalf("indexes of %s: %v %v", table, out, err)
	}
	return out
}
