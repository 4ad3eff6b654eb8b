package sqlstore

import (
	"database/sql/driver"
	"sync"
	"sync/atomic"

	"modernc.org/sqlite"

	"github.com/uias/uias/services/audit"
)

// leafRunFunc is the SQLite aggregate function of leafRun:
// leafRunFunc(id, seq, time_ms, duration_ms, event_id, event_type,
// component, serial, trace_id, app_id, api, actor, subject, org, result,
// reason, client_ip, detail, tree hashes) adds each row's record to the
// leafRunState that scanLeafRun registered under id in leafRunsActive. It
// takes the values as SQLite holds them, without copying them first
// (VolatileArgs: they are read during the call only), so that reading a
// run allocates nothing in SQLite per record.
//
// modernc.org/sqlite registers a function for every connection its driver
// opens afterwards, so it is registered when this package is initialised,
// before any connection of the process is open. Called with an id that is
// not registered (by hand, say), it does nothing.
const leafRunFunc = "uias_audit_leaf_run"

func init() {
	sqlite.MustRegisterFunction(leafRunFunc, &sqlite.FunctionImpl{
		NArgs:         19,
		Deterministic: true,
		VolatileArgs:  true,
		MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) { return &leafAggregate{}, nil },
	})
}

// leafRunsActive holds the runs being read (id -> *leafRunState): the
// aggregate function reaches its run only through an argument.
var (
	leafRunsActive sync.Map
	leafRunIDs     atomic.Int64
)

// leafRunState is a run of records as leafRun read it: per record its
// seq, type, leaf (leaves up to leafEnd) and stored tree hashes (hashes
// up to hashEnd; -1 when it has no tree row). declined: a value was not of
// its column's type (a NULL, a number stored as text, text stored as a
// blob); Verify reads such a run row by row.
type leafRunState struct {
	declined bool
	seqs     []int64
	types    []string
	leafEnd  []int
	leaves   []byte
	hashEnd  []int
	hashes   []byte
	cols     audit.LeafColumns
}

// grow makes room for n records.
func (r *leafRunState) grow(n int) {
	r.seqs = make([]int64, 0, n)
	r.types = make([]string, 0, n)
	r.leafEnd = make([]int, 0, n)
	r.hashEnd = make([]int, 0, n)
	r.leaves = make([]byte, 0, n*320)
	r.hashes = make([]byte, 0, n*2*32)
}

// add adds the record of one row of leafRun (its values after the id).
func (r *leafRunState) add(vals []driver.Value) {
	if r.declined {
		return
	}
	c := &r.cols
	var ok [3]bool
	c.Seq, ok[0] = vals[0].(int64)
	c.TimeMS, ok[1] = vals[1].(int64)
	c.DurationMS, ok[2] = vals[2].(float64)
	if !ok[0] || !ok[1] || !ok[2] {
		r.declined = true
		return
	}
	for i, p := range [...]*string{&c.EventID, &c.Type, &c.Component, &c.Serial, &c.TraceID, &c.AppID, &c.API, &c.Actor,
		&c.Subject, &c.Org, &c.Result, &c.Reason, &c.ClientIP, &c.Detail} {
		s, ok := vals[3+i].(string)
		if !ok {
			r.declined = true
			return
		}
		*p = s
	}
	r.seqs = append(r.seqs, c.Seq)
	if n := len(r.types); n > 0 && r.types[n-1] == c.Type {
		r.types = append(r.types, r.types[n-1])
	} else {
		r.types = append(r.types, string([]byte(c.Type))) // (a copy: c.Type is SQLite's memory)
	}
	n := len(r.leaves)
	var leafOK bool
	if r.leaves, leafOK = c.AppendLeaf(r.leaves); !leafOK {
		r.leaves = r.leaves[:n] // no leaf: empty
	}
	r.leafEnd = append(r.leafEnd, len(r.leaves))
	switch h := vals[17].(type) {
	case nil: // no tree row
		r.hashEnd = append(r.hashEnd, -1)
	case []byte:
		r.hashes = append(r.hashes, h...)
		r.hashEnd = append(r.hashEnd, len(r.hashes))
	default: // stored as another type: compares unequal
		r.hashes = append(r.hashes, 0)
		r.hashEnd = append(r.hashEnd, len(r.hashes))
	}
	*c = audit.LeafColumns{} // (no reference to SQLite's memory kept)
}

// leafAggregate is one evaluation of leafRunFunc.
type leafAggregate struct {
	run *leafRunState // nil until the first row; stays nil for an unknown id
}

// Step implements sqlite.AggregateFunction.
func (a *leafAggregate) Step(_ *sqlite.FunctionContext, vals []driver.Value) error {
	if a.run == nil {
		id, _ := vals[0].(int64)
		v, ok := leafRunsActive.Load(id)
		if !ok {
			return nil
		}
		a.run = v.(*leafRunState)
	}
	a.run.add(vals[1:])
	return nil
}

// WindowInverse implements sqlite.AggregateFunction (leafRunFunc is not
// used as a window function).
func (a *leafAggregate) WindowInverse(*sqlite.FunctionContext, []driver.Value) error { return nil }

// WindowValue implements sqlite.AggregateFunction: the value is NULL.
func (a *leafAggregate) WindowValue(*sqlite.FunctionContext) (driver.Value, error) { return nil, nil }

// Final implements sqlite.AggregateFunction.
func (a *leafAggregate) Final(*sqlite.FunctionContext) {}
