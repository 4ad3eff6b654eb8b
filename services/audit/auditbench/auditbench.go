// Package auditbench holds the audit log's benchmark workloads and their
// same-run floors, shared by the go test benchmarks of
// services/audit/sqlstore and `uias bench --only audit`
// (docs/benchmarks-audit.md). It imports no test package.
package auditbench

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/sqlstore"
)

// Records are n varied records (1000 actors, 5000 subjects, 50 apps, 20
// APIs, 3 results, 2000 addresses), one per 100 ms from base.
func Records(prefix string, n int, base time.Time) []audit.Record {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	apis := []string{"authenticate", "admin.login", "admin.auth", "user.create", "user.update", "session.create", "ticket.validate",
		"ticket.issue", "logout", "password.change", "org.create", "app.create", "link.create", "user.lock", "user.unlock",
		"caller.denied", "admin.refused", "group.create", "keys.rotate", "app.update"}
	out := make([]audit.Record, n)
	for i := range out {
		out[i] = audit.Record{EventID: fmt.Sprintf("%s-%d", prefix, i), Type: "audit.x", Component: "identity",
			Time:   base.Add(time.Duration(i) * 100 * time.Millisecond),
			Serial: fmt.Sprintf("%016x", rng.Uint64()), TraceID: fmt.Sprintf("%016x", rng.Uint64()),
			AppID: "app-" + strconv.Itoa(rng.IntN(50)), API: apis[rng.IntN(len(apis))], Actor: "user:u" + strconv.Itoa(rng.IntN(1000)),
			Subject: "user:s" + strconv.Itoa(rng.IntN(5000)), Org: "org-" + strconv.Itoa(rng.IntN(20)),
			Result: []string{"success", "failure", "denied"}[rng.IntN(3)], Reason: "OK", DurationMS: float64(rng.IntN(5000)) / 100,
			ClientIP: fmt.Sprintf("10.%d.%d.%d", rng.IntN(8), rng.IntN(250), rng.IntN(250)),
			Detail:   map[string]string{"login": "login" + strconv.Itoa(rng.IntN(5000))}}
	}
	return out
}

// Signer is a checkpoint signer on a fresh key ring.
func Signer() (*audit.Signer, error) {
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		return nil, err
	}
	keys, err := ring.Ed25519(audit.KeyPurpose)
	if err != nil {
		return nil, err
	}
	return audit.NewSigner("uias.audit/bench", keys)
}

// CPUTime is the CPU time this process used so far (user + system, all
// threads): what a loaded machine distorts less than wall-clock time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// base is the time of the first generated record.
var base = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// Ingest is what MeasureIngest measured.
type Ingest struct {
	Records                     int
	Ours, Floor                 time.Duration // wall clock
	OursCPU, FloorCPU           time.Duration // CPU time of the process
	Rate, FloorRate             float64       // events per second
	RatePerCPU, FloorRatePerCPU float64       // events per CPU-second
}

// MeasureIngest appends n records through Log.Append (duplicate check,
// leaf and tree hashes, a checkpoint every 1000) in batches of batch on
// ours, against the same record inserts without the tree on floor
// (sqlstore.InsertPlain), alternating batch by batch so that the load of
// a shared machine falls on both alike. Both databases are migrated here
// and must be empty.
func MeasureIngest(ctx context.Context, ours, floor *store.DB, n, batch int) (Ingest, error) {
	res := Ingest{Records: n}
	for _, db := range []*store.DB{ours, floor} {
		if err := sqlstore.Migrate(ctx, db); err != nil {
			return res, err
		}
	}
	signer, err := Signer()
	if err != nil {
		return res, err
	}
	l := audit.NewLog(sqlstore.New(ours), signer, audit.LogOptions{Policy: audit.Policy{Every: 1000, Interval: time.Hour}})
	recs := Records("ev", n, base)
	for i := 0; i < n; i += batch {
		part := recs[i:min(i+batch, n)]
		start, cpu := time.Now(), CPUTime()
		err := floor.InTx(ctx, func(tx *sql.Tx) error { return sqlstore.InsertPlain(ctx, floor, tx, part, int64(i)) })
		if err != nil {
			return res, err
		}
		res.Floor, res.FloorCPU = res.Floor+time.Since(start), res.FloorCPU+CPUTime()-cpu
		start, cpu = time.Now(), CPUTime()
		if _, err := l.Append(ctx, part); err != nil {
			return res, err
		}
		res.Ours, res.OursCPU = res.Ours+time.Since(start), res.OursCPU+CPUTime()-cpu
	}
	res.Rate, res.FloorRate = float64(n)/res.Ours.Seconds(), float64(n)/res.Floor.Seconds()
	res.RatePerCPU, res.FloorRatePerCPU = float64(n)/res.OursCPU.Seconds(), float64(n)/res.FloorCPU.Seconds()
	return res, nil
}

// BuildLog appends n generated records to the empty log of db (migrated
// here) in batches of 2000, with a checkpoint every 1000.
func BuildLog(ctx context.Context, db *store.DB, n int) (*audit.Log, error) {
	if err := sqlstore.Migrate(ctx, db); err != nil {
		return nil, err
	}
	signer, err := Signer()
	if err != nil {
		return nil, err
	}
	l := audit.NewLog(sqlstore.New(db), signer, audit.LogOptions{Policy: audit.Policy{Every: 1000, Interval: time.Hour}})
	recs := Records("ev", n, base)
	for i := 0; i < n; i += 2000 {
		if _, err := l.Append(ctx, recs[i:min(i+2000, n)]); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Verify is what MeasureVerify measured.
type Verify struct {
	Records         int
	Ours, Floor     time.Duration
	OursCPU         time.Duration // CPU time of the process during Verify
	Rate, FloorRate float64       // records per second
	RatePerCPU      float64       // records per CPU-second
}

// MeasureVerify times Verify of l's whole log (every record read, every
// leaf and tree hash recomputed and compared with the stored ones and the
// checkpoints) against the floor of plain SHA-256 over the same leaf bytes
// in memory, on one goroutine.
func MeasureVerify(ctx context.Context, l *audit.Log) (Verify, error) {
	var leaves [][]byte
	if err := l.Store().ScanRecords(ctx, 0, func(r *audit.Record) error { leaves = append(leaves, r.LeafData()); return nil }); err != nil {
		return Verify{}, err
	}
	res := Verify{Records: len(leaves)}
	start := time.Now()
	var h [32]byte
	for _, d := range leaves {
		h = sha256.Sum256(d)
	}
	_ = h
	res.Floor = time.Since(start)
	start, cpu := time.Now(), CPUTime()
	rep, err := l.Verify(ctx)
	res.Ours, res.OursCPU = time.Since(start), CPUTime()-cpu
	if err != nil {
		return res, err
	}
	if !rep.OK() || rep.Records != int64(len(leaves)) {
		what := "no problem"
		if rep.Problem != nil {
			what = rep.Problem.What
		}
		return res, fmt.Errorf("verify: %d records checked, %s", rep.Records, what)
	}
	res.Rate, res.FloorRate = float64(res.Records)/res.Ours.Seconds(), float64(res.Records)/res.Floor.Seconds()
	res.RatePerCPU = float64(res.Records) / res.OursCPU.Seconds()
	return res, nil
}

// Proof is what MeasureProofs measured (per proof).
type Proof struct {
	Proofs, Depth int
	Ours, Floor   time.Duration
}

// MeasureProofs times ProveInclusion of random records of l's log (record,
// checkpoint and proof hashes read from SQL) against the floor of the
// SHA-256 work of checking such a proof (one leaf hash and Depth node
// hashes, in memory).
func MeasureProofs(ctx context.Context, l *audit.Log, proofs int) (Proof, error) {
	size, err := l.Store().Size(ctx)
	if err != nil {
		return Proof{}, err
	}
	if size == 0 {
		return Proof{}, errors.New("no proofs of an empty log")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	res := Proof{Proofs: proofs}
	start := time.Now()
	var last *audit.Inclusion
	for range proofs {
		p, err := l.ProveInclusion(ctx, rng.Int64N(size), 0)
		if err != nil {
			return res, err
		}
		last = p
	}
	res.Ours = time.Since(start) / time.Duration(proofs)
	res.Depth = len(last.Proof)
	leaf := last.Record.LeafData()
	start = time.Now()
	var h tlog.Hash
	for range proofs {
		h = tlog.RecordHash(leaf)
		for range res.Depth {
			h = tlog.NodeHash(h, h)
		}
	}
	_ = h
	res.Floor = time.Since(start) / time.Duration(proofs)
	return res, nil
}
