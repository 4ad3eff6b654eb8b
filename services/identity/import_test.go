package identity_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/importfile"
	"github.com/uias/uias/services/identity/sqlstore"
)

type importWorld struct {
	*world
	st   *sqlstore.Store
	db   *store.DB
	root *identity.Org
}

func newImportWorld(t testing.TB) *importWorld {
	t.Helper()
	return newImportWorldWith(t, identity.Config{})
}

func newImportWorldWith(t testing.TB, cfg identity.Config) *importWorld {
	t.Helper()
	return newImportWorldDeps(t, identity.Deps{Config: cfg})
}

// newImportWorldDeps is an import world whose service has d's parts
// besides its store and clock.
func newImportWorldDeps(t testing.TB, d identity.Deps) *importWorld {
	t.Helper()
	return newImportWorldOutbox(t, d, true)
}

// newImportWorldOutbox is newImportWorldDeps with the store's login outbox
// (as the component opens it) or without one (as on PostgreSQL).
func newImportWorldOutbox(t testing.TB, d identity.Deps, loginOutbox bool) *importWorld {
	t.Helper()
	db := testDB(t)
	var opts []sqlstore.Option
	if loginOutbox {
		lo, err := sqlstore.OpenLoginOutbox(context.Background(), db)
		if err != nil || lo == nil {
			t.Fatalf("OpenLoginOutbox = %v, %v", lo, err)
		}
		t.Cleanup(func() { _ = lo.Close() })
		opts = append(opts, sqlstore.WithLoginOutbox(lo))
	}
	st, clk := sqlstore.New(db, opts...), newTestClock()
	d.Store, d.Now = st, clk.now
	if d.Sleep == nil {
		d.Sleep = clk.sleep
	}
	svc := testService(t, d)
	w := setupOn(t, svc, clk)
	orgs, _, err := svc.ListOrgs(context.Background(), identity.OrgFilter{}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	return &importWorld{world: w, st: st, db: db, root: orgs[0]}
}

func (iw *importWorld) outbox(t *testing.T) int {
	t.Helper()
	var n int
	if err := iw.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM events_outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// run imports the file at path as the server does (without the per-field
// proto rules, which the server checks).
func (iw *importWorld) run(t testing.TB, path string, f importfile.Format, k importfile.Kind, id string, dry bool) *identity.ImportReport {
	t.Helper()
	r, err := importfile.Open(path, f, k)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := iw.svc.Import(context.Background(), identity.ImportOptions{Kind: string(k), ImportID: id, DryRun: dry},
		func() (*identity.ImportRow, bool, error) {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				return nil, false, nil
			}
			if err != nil {
				return nil, false, err
			}
			row := &identity.ImportRow{Row: rec.Row, Fields: rec.Fields}
			if field, msg := importfile.Problem(rec, k); msg != "" {
				row.Problem = &identity.RowError{Row: rec.Row, Field: field, Reason: identity.ReasonImportBadField, Message: msg}
			}
			return row, true, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// errorsByRow is the report's errors as "row:reason" strings.
func errorsByRow(rep *identity.ImportReport) map[int]string {
	out := map[int]string{}
	for _, e := range rep.Errors {
		out[e.Row] = e.Reason
	}
	return out
}

// sameFields checks the column (field) the report names for the rows of
// want.
func sameFields(t *testing.T, rep *identity.ImportReport, want map[int]string) {
	t.Helper()
	for _, e := range rep.Errors {
		if f, ok := want[e.Row]; ok && e.Field != f {
			t.Errorf("row %d (%s): field %q, want %q", e.Row, e.Reason, e.Field, f)
		}
	}
}

func sameErrors(t *testing.T, rep *identity.ImportReport, want map[int]string) {
	t.Helper()
	got := errorsByRow(rep)
	if len(got) != len(want) {
		t.Fatalf("row errors %v, want %v (%+v)", got, want, rep.Errors)
	}
	for row, reason := range want {
		if got[row] != reason {
			t.Fatalf("row %d: %q, want %q (%+v)", row, got[row], reason, rep.Errors)
		}
	}
	// In the file's order, whichever step found them (the checks of the
	// rows or the store's).
	for i := 1; i < len(rep.Errors); i++ {
		if rep.Errors[i].Row < rep.Errors[i-1].Row {
			t.Fatalf("row errors out of the file's order: %+v", rep.Errors)
		}
	}
}

func TestImportOrgsCSV(t *testing.T) {
	iw := newImportWorld(t)
	// Chinese headers (the template's), a BOM as Excel writes, a parent
	// defined by an earlier row, a blank row.
	csv := "\uFEFF机构编码,机构名称,上级机构编码\n" +
		"port-a,港口甲," + iw.root.Code + "\n" +
		"port-a-1,港口甲一处,port-a\n" +
		",,\n" +
		"port-x,无上级,no-such-org\n" +
		"port-a,重复,port-a\n"
	p := writeFile(t, "orgs.csv", csv)
	rep := iw.run(t, p, importfile.CSV, importfile.Orgs, "orgs-1", false)
	if rep.Rows != 4 || rep.Written != 2 || rep.Failed != 2 {
		t.Fatalf("report %+v", rep)
	}
	sameErrors(t, rep, map[int]string{5: identity.ReasonImportUnknownOrg, 6: identity.ReasonImportDuplicate})
	kids, _, err := iw.svc.ListOrgs(context.Background(), identity.OrgFilter{ParentID: iw.root.ID, Subtree: true}, 0, "")
	if err != nil || len(kids) != 2 || kids[0].Code != "port-a" || kids[1].Code != "port-a-1" {
		t.Fatalf("orgs after the import: %v %v", kids, err)
	}
	// The same file again under the same id: nothing new, nothing failed
	// but what failed before.
	rep = iw.run(t, p, importfile.CSV, importfile.Orgs, "orgs-1", false)
	if rep.Written != 0 || rep.Skipped != 2 || rep.Failed != 2 {
		t.Fatalf("second run %+v", rep)
	}
	// Under another id the codes exist.
	rep = iw.run(t, p, importfile.CSV, importfile.Orgs, "orgs-2", false)
	if rep.Written != 0 || rep.Failed != 4 || errorsByRow(rep)[2] != "ALREADY_EXISTS" {
		t.Fatalf("other import id %+v", rep)
	}
}

const sshaOcean = "{SSHA}ToCQ+Yy+XbHrrCMPC5gQGBLBShJzNGx0" // "Ocean-Pass-1"

func usersXLSX(t *testing.T, rows [][]string) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		cells := make([]any, len(r))
		for j, c := range r {
			cells[j] = c
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, cells); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "users.xlsx")
	if err := f.SaveAs(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImportUsersXLSX(t *testing.T) {
	iw := newImportWorld(t)
	root := iw.root.Code
	p := usersXLSX(t, [][]string{
		{"登录名", "姓名", "机构编码", "邮箱", "证件类型", "证件号码", "密码哈希", "应用类型", "应用编码", "应用账号"},
		{"zhangsan", "张三", root, "zs@example.org", "身份证", "11010519491231002X", sshaOcean, "OA", "oa", "z001"}, // 2
		{"lisi", "李四", root, "", "护照", "", "", "", "", ""},                                                     // 3 a type, no number
		{"ZhangSan", "张三二", root, "", "", "", "", "", "", ""},                                                  // 4 duplicate login (case aside)
		{"wangwu", "王五", "nowhere", "", "", "", "", "", "", ""},                                                // 5 unknown org
		{"zhaoliu", "赵六", root, "", "resident_id", "110105194912310021", "", "", "", ""},                       // 6 bad check digit
		{"sunqi", "孙七", root, "", "", "", "md5:abc", "", "", ""},                                               // 7 bad hash
		{"MIA", "Mia Again", root, "", "", "", "", "", "", ""},                                                 // 8 login exists (case aside)
		{"zhouba", "周八", root, "not an email", "", "", "", "", "", ""},                                         // 9 bad email
		{"wujiu", "吴九", root, "", "", "", "", "OA", "nope", "w009"},                                            // 10 unknown app
		{"zheng", "郑十", root, "", "", "", "", "OA", "oa", "z001"},                                              // 11 account twice
	})
	want := map[int]string{4: identity.ReasonImportDuplicate, 5: identity.ReasonImportUnknownOrg,
		6: identity.ReasonImportBadIDNumber, 7: identity.ReasonImportBadHash, 8: "ALREADY_EXISTS",
		9: identity.ReasonImportBadField, 10: identity.ReasonImportUnknownApp, 11: identity.ReasonImportDuplicate}

	// A dry run reports what a run would do and writes nothing.
	before := iw.outbox(t)
	rep := iw.run(t, p, importfile.XLSX, importfile.Users, "users-1", true)
	if rep.Rows != 10 || rep.Written != 2 || rep.Failed != 8 || !rep.DryRun {
		t.Fatalf("dry run %+v", rep)
	}
	sameErrors(t, rep, want)
	// a login that exists names its column, as a duplicate in the file does
	// (the store's check, not the row's: acceptb)
	sameFields(t, rep, map[int]string{4: "login_name", 8: "login_name", 11: "app_account"})
	if _, err := iw.st.GetUserByLogin(context.Background(), "zhangsan"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("a dry run wrote a user: %v", err)
	}
	if n := iw.outbox(t); n != before {
		t.Fatalf("a dry run wrote %d events", n-before)
	}

	rep = iw.run(t, p, importfile.XLSX, importfile.Users, "users-1", false)
	if rep.Written != 2 || rep.Failed != 8 {
		t.Fatalf("run %+v", rep)
	}
	sameErrors(t, rep, want)
	// One batch: one change event and one audit record for it.
	if n := iw.outbox(t) - before; n != 2 {
		t.Fatalf("the batch wrote %d events, want 2", n)
	}
	u, err := iw.st.GetUserByLogin(context.Background(), "zhangsan")
	if err != nil || u.IDNumberMask == "" || u.PasswordHash != sshaOcean {
		t.Fatalf("imported user %+v %v", u, err)
	}
	// The person logs in through the application with the old password,
	// which is then rehashed.
	res, err := iw.svc.Authenticate(iw.ctx, identity.AuthRequest{AppUserID: "z001", Password: "Ocean-Pass-1", AuthType: identity.AuthPassword})
	if err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("login of an imported user: %+v %v", res, err)
	}
	if u, _ := iw.st.GetUser(context.Background(), u.ID); !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("hash after the login: %q", u.PasswordHash)
	}
	// Resuming: the same file under the same id writes nothing more.
	rep = iw.run(t, p, importfile.XLSX, importfile.Users, "users-1", false)
	if rep.Written != 0 || rep.Skipped != 2 || rep.Failed != 8 {
		t.Fatalf("resumed run %+v", rep)
	}
	users, _, err := iw.svc.ListUsers(context.Background(), identity.UserFilter{Query: "李四"}, 0, "")
	if err != nil || len(users) != 1 {
		t.Fatalf("imported users are searchable: %v %v", users, err)
	}
	// An ID type without its number is no document (CreateUser refuses
	// the type alone).
	if users[0].IDType != identity.IDTypeNone || users[0].IDNumberMask != "" {
		t.Fatalf("a type without a number imported as %v %q", users[0].IDType, users[0].IDNumberMask)
	}
}

func TestImportLinksJSONL(t *testing.T) {
	iw := newImportWorld(t)
	jl := `{"login_name":"mia","app_type":"OA","app_code":"oa","app_account":"m-second"}
{"login_name":"nobody","app_type":"OA","app_code":"oa","app_account":"n1"}
[1, 2]
{"login_name":"mia","app_type":"OA","app_code":"oa","app_account":"x","colour":"red"}

{"login_name":"mia","app_type":"OA","app_code":"oa","app_account":"m001"}
`
	p := writeFile(t, "links.jsonl", jl)
	rep := iw.run(t, p, importfile.JSONL, importfile.Links, "", false)
	// mia is linked to oa already (one link per person and application).
	sameErrors(t, rep, map[int]string{1: "ALREADY_EXISTS", 2: identity.ReasonImportUnknownUser,
		3: identity.ReasonImportBadField, 4: identity.ReasonImportBadField, 6: "ALREADY_EXISTS"})
	sameFields(t, rep, map[int]string{1: "app_code", 6: "app_account"})
	if rep.ImportID == "" || rep.Rows != 5 {
		t.Fatalf("report %+v", rep)
	}
}

func TestImportFileErrors(t *testing.T) {
	for name, c := range map[string]struct {
		content string
		f       importfile.Format
		k       importfile.Kind
	}{
		"unknown column": {"login_name,display_name,org_code,colour\n", importfile.CSV, importfile.Users},
		"missing column": {"login_name,display_name\n", importfile.CSV, importfile.Users},
		"twice":          {"code,name,parent_code,code\n", importfile.CSV, importfile.Orgs},
		"empty":          {"", importfile.CSV, importfile.Orgs},
		"not xlsx":       {"hello", importfile.XLSX, importfile.Orgs},
		"unknown format": {"", "pdf", importfile.Orgs},
		"unknown kind":   {"", importfile.CSV, "groups"},
	} {
		p := writeFile(t, "f", c.content)
		_, err := importfile.Open(p, c.f, c.k)
		var he *importfile.ErrHeader
		if !errors.As(err, &he) {
			t.Errorf("%s: %v, want a header error", name, err)
		}
	}
}

// Logins go on during an import: an import writes in short transactions
// and lets the writes waiting for the database (a login's gate update)
// go first, so every login made while it runs succeeds. No timing is
// asserted: the logins that completed while the import ran are counted
// (at least one, none failed), with generous deadlines.
func TestLoginsContinueDuringImport(t *testing.T) {
	iw := newImportWorld(t)
	const n = 5000
	var b strings.Builder
	b.WriteString("login_name,display_name,org_code,email\n")
	for i := range n {
		fmt.Fprintf(&b, "imp%05d,导入%05d,%s,imp%05d@example.org\n", i, i, iw.root.Code, i)
	}
	p := writeFile(t, "many.csv", b.String())

	ctx, cancel := context.WithTimeout(iw.ctx, 5*time.Minute)
	defer cancel()
	var (
		importing atomic.Bool
		during    atomic.Int64 // logins begun and ended while the import ran
		failed    atomic.Int64
		firstErr  atomic.Value
		stop      = make(chan struct{})
		loginsEnd = make(chan struct{})
	)
	go func() {
		defer close(loginsEnd)
		for {
			select {
			case <-stop:
				return
			default:
			}
			before := importing.Load()
			res, err := iw.svc.Authenticate(ctx, identity.AuthRequest{AppUserID: "m001", Password: "First-Pass-1", AuthType: identity.AuthPassword})
			if err == nil && res.Reason != identity.ReasonOK {
				err = fmt.Errorf("reason %v", res.Reason)
			}
			if err != nil {
				if failed.Add(1) == 1 {
					firstErr.Store(err)
				}
				continue
			}
			if before && importing.Load() {
				during.Add(1)
			}
		}
	}()
	importing.Store(true)
	rep := iw.run(t, p, importfile.CSV, importfile.Users, "", false)
	importing.Store(false)
	close(stop)
	<-loginsEnd
	if rep.Written != n || rep.Failed != 0 {
		t.Fatalf("import %+v", rep)
	}
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d logins failed during the import, first: %v", f, firstErr.Load())
	}
	if during.Load() == 0 {
		t.Fatal("no login completed during the import")
	}
	t.Logf("%d logins completed during the import of %d rows", during.Load(), n)
}

// People are read and checked on one goroutine while the batch before is
// written on another (batches of 3 rows here): the report counts every
// row once and lists the errors of both steps in the file's order; an
// import stopped midway (its context ends) keeps the batches written, and
// the same file under the same import id writes the rest.
func TestImportPipeline(t *testing.T) {
	identity.SetImportBatchRows(t, 3)
	iw := newImportWorld(t)
	var b strings.Builder
	b.WriteString("login_name,display_name,org_code,email\n")
	want := map[int]string{}
	const n = 20
	for i := range n {
		row := i + 2
		switch i % 7 {
		case 3: // the store refuses it (the login exists)
			fmt.Fprintf(&b, "mia,流水%02d,%s,\n", i, iw.root.Code)
			want[row] = "ALREADY_EXISTS"
			if i > 3 {
				want[row] = identity.ReasonImportDuplicate // mia again in the file
			}
		case 5: // the checks refuse it
			fmt.Fprintf(&b, "pipe%02d,流水%02d,nowhere,\n", i, i)
			want[row] = identity.ReasonImportUnknownOrg
		default:
			fmt.Fprintf(&b, "pipe%02d,流水%02d,%s,pipe%02d@example.org\n", i, i, iw.root.Code, i)
		}
	}
	p := writeFile(t, "pipe.csv", b.String())
	rep := iw.run(t, p, importfile.CSV, importfile.Users, "pipe-1", false)
	if rep.Rows != n || rep.Written+rep.Failed != n || rep.Failed != len(want) {
		t.Fatalf("report %+v, want %d rows, %d failed", rep, n, len(want))
	}
	sameErrors(t, rep, want)

	// Stopped after 8 rows were read: the batches written stay written.
	p2 := strings.ReplaceAll(b.String(), "pipe", "more")
	p2 = strings.ReplaceAll(p2, "mia,", "mia2,")
	path := writeFile(t, "more.csv", p2)
	r, err := importfile.Open(path, importfile.CSV, importfile.Users)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	read := 0
	_, err = iw.svc.Import(ctx, identity.ImportOptions{Kind: "users", ImportID: "pipe-2"}, func() (*identity.ImportRow, bool, error) {
		if read == 8 {
			cancel()
		}
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		read++
		return &identity.ImportRow{Row: rec.Row, Fields: rec.Fields}, true, nil
	})
	_ = r.Close()
	if err == nil {
		t.Fatal("an import whose context ended answered no error")
	}
	rep = iw.run(t, path, importfile.CSV, importfile.Users, "pipe-2", false)
	if rep.Written+rep.Skipped+rep.Failed != n || rep.Written == 0 {
		t.Fatalf("resumed import %+v", rep)
	}
	for i := range n {
		if i%7 == 5 {
			continue
		}
		login := fmt.Sprintf("more%02d", i)
		if i%7 == 3 {
			if i > 3 {
				continue
			}
			login = "mia2"
		}
		if _, err := iw.st.GetUserByLogin(context.Background(), login); err != nil {
			t.Fatalf("%s after the resumed import: %v", login, err)
		}
	}
}

// An import's transactions follow the logins (set here by the state of
// the service's hasher, not by timing): without logins it writes its batch
// in one transaction and never pauses; while logins hash but each finds a
// free worker, the same on a store with a login outbox (most logins write
// nothing to the database, and one that does ends the transaction after
// the chunk in flight: the store's cut), and one chunk (at most 200 rows)
// a transaction on a store without (as on PostgreSQL); while logins wait
// for a worker, a pause after each chunk (three times as long as the
// chunk took, with the default share): within the one transaction on a
// store with a login outbox, after each one-chunk transaction on a store
// without.
func TestImportGivesWayToLogins(t *testing.T) {
	identity.SetImportBatchRows(t, 300)
	for _, c := range []struct {
		name     string
		hold     int  // hashes held running, of two workers
		noOutbox bool // the store has no login outbox
		chunks   bool // one chunk a transaction
		pauses   bool
		txOpen   time.Duration // importTxOpenMax (0: the default)
	}{
		{"no logins", 0, false, false, false, 0},
		{"logins served at once", 1, false, false, false, 0},
		{"logins served at once, no login outbox", 1, true, true, false, 0},
		{"logins waiting", 2, false, false, true, 0},
		{"logins waiting, no login outbox", 2, true, true, true, 0},
		// A transaction that paused ends once it has been open that long.
		{"logins waiting, transactions open 1 ns at most", 2, false, true, true, time.Nanosecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.txOpen > 0 {
				identity.SetImportTxOpenMax(t, c.txOpen)
			}
			var mu sync.Mutex
			now := time.Unix(1_000_000, 0)
			h, hold := heldHasher(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
			iw := newImportWorldOutbox(t, identity.Deps{Hasher: h}, !c.noOutbox)
			mu.Lock()
			now = now.Add(time.Hour) // the set-up's hashes (bootstrap, a user) are long past
			mu.Unlock()
			defer hold(c.hold)()
			var b strings.Builder
			b.WriteString("login_name,display_name,org_code,email\n")
			for i := range 300 {
				fmt.Fprintf(&b, "gw%05d,让路%05d,%s,gw%05d@example.org\n", i, i, iw.root.Code, i)
			}
			p := writeFile(t, "gw.csv", b.String())
			iw.clk.waits()
			before := iw.outbox(t)
			rep := iw.run(t, p, importfile.CSV, importfile.Users, "", false)
			if rep.Written != 300 || rep.Failed != 0 {
				t.Fatalf("import %+v", rep)
			}
			txs := (iw.outbox(t) - before) / 2 // a change event and an audit record each
			pauses := iw.clk.waits()
			if c.chunks != (txs >= 2) || (!c.chunks && txs != 1) {
				t.Fatalf("%d transactions; want one chunk (at most 200 rows) a transaction: %v", txs, c.chunks)
			}
			if c.pauses != (len(pauses) > 0) || (c.pauses && len(pauses) < txs-1) {
				t.Fatalf("%d transactions, pauses %v; want a pause after each chunk: %v", txs, pauses, c.pauses)
			}
			for _, d := range pauses {
				if d <= 0 || d > time.Second {
					t.Fatalf("pause %s, want within (0, 1s]", d)
				}
			}
		})
	}
}

// The pause after a transaction lasts while logins wait for the CPUs, not
// longer: here a login waited for a worker a moment ago (the clock stands
// still) but none waits now, so each pause is one step (5 ms), not three
// times the transaction.
func TestImportGiveWayEndsWithTheWait(t *testing.T) {
	identity.SetImportBatchRows(t, 300)
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	h, hold := heldHasher(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	iw := newImportWorldDeps(t, identity.Deps{Hasher: h})
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	release := hold(2)
	done := make(chan struct{})
	go func() { _, _ = h.Hash(context.Background(), "a login's password"); close(done) }() // every worker busy: it waits
	for h.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	release()
	<-done
	if !h.Contended(identity.ImportWaitWindow) || h.Contended(0) {
		t.Fatal("want logins that waited a moment ago and none waiting now")
	}
	var b strings.Builder
	b.WriteString("login_name,display_name,org_code,email\n")
	for i := range 300 {
		fmt.Fprintf(&b, "gwe%05d,让路%05d,%s,gwe%05d@example.org\n", i, i, iw.root.Code, i)
	}
	p := writeFile(t, "gwe.csv", b.String())
	iw.clk.waits()
	rep := iw.run(t, p, importfile.CSV, importfile.Users, "", false)
	if rep.Written != 300 || rep.Failed != 0 {
		t.Fatalf("import %+v", rep)
	}
	pauses := iw.clk.waits()
	if len(pauses) == 0 {
		t.Fatal("no pause: the import does not give way after logins waited")
	}
	for _, d := range pauses {
		if d > 5*time.Millisecond {
			t.Fatalf("pauses %v; want one step (5ms) each: no login waits now", pauses)
		}
	}
}

// A cancel during a pause within the transaction (logins waiting, a store
// with a login outbox) ends the import with an error, and that
// transaction, its first chunk included, is rolled back: no row, no
// event. The same file sent again writes every row.
func TestImportCancelledWithinItsPause(t *testing.T) {
	identity.SetImportBatchRows(t, 300)
	h, hold := heldHasher(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pauses atomic.Int32
	iw := newImportWorldOutbox(t, identity.Deps{Hasher: h, Sleep: func(context.Context, time.Duration) error {
		pauses.Add(1)
		cancel() // the import is stopped during its pause
		return context.Canceled
	}}, true)
	release := hold(2) // every worker busy: logins wait for the CPUs
	defer release()
	var b strings.Builder
	b.WriteString("login_name,display_name,org_code,email\n")
	for i := range 300 {
		fmt.Fprintf(&b, "gwc%05d,让路%05d,%s,gwc%05d@example.org\n", i, i, iw.root.Code, i)
	}
	p := writeFile(t, "gwc.csv", b.String())
	before := iw.outbox(t)
	r, err := importfile.Open(p, importfile.CSV, importfile.Users)
	if err != nil {
		t.Fatal(err)
	}
	_, err = iw.svc.Import(ctx, identity.ImportOptions{Kind: "users", ImportID: "gwc"}, func() (*identity.ImportRow, bool, error) {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		return &identity.ImportRow{Row: rec.Row, Fields: rec.Fields}, true, nil
	})
	_ = r.Close()
	if err == nil || pauses.Load() == 0 {
		t.Fatalf("import cancelled in its pause: err %v after %d pauses; want an error after a pause", err, pauses.Load())
	}
	if _, err := iw.st.GetUserByLogin(context.Background(), "gwc00000"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the first chunk's first row after the cancel: %v, want not found (rolled back)", err)
	}
	if n := iw.outbox(t) - before; n != 0 {
		t.Fatalf("%d events of a rolled-back transaction", n)
	}
	release() // the logins end: the import runs without pauses
	rep := iw.run(t, p, importfile.CSV, importfile.Users, "gwc", false)
	if rep.Written != 300 || rep.Failed != 0 {
		t.Fatalf("the same file again: %+v, want 300 written", rep)
	}
}

// heldHasher is a hasher of two workers (cheap parameters, 1 ms a hash, on
// the clock now, time.Now when nil) whose logins' hashes can be kept
// running: hold(n) starts n of them and returns once all n run; the
// release it returns lets them end and waits for them (its later calls do
// nothing). Call hold once.
func heldHasher(now func() time.Time) (*crypto.Hasher, func(n int) (release func())) {
	held, free := make(chan struct{}, 2), make(chan struct{})
	var holding atomic.Bool
	h := crypto.NewHasher(crypto.HasherConfig{Params: cheapArgon2, Workers: 2, Testing: &crypto.HasherTesting{
		HashTime: time.Millisecond,
		Now:      now,
		BeforeHash: func() {
			if holding.Load() {
				held <- struct{}{}
				<-free
			}
		},
	}})
	hold := func(n int) func() {
		done := make(chan struct{}, n)
		holding.Store(true)
		for range n {
			go func() { _, _ = h.Hash(context.Background(), "a login's password"); done <- struct{}{} }()
			<-held
		}
		holding.Store(false)
		var once sync.Once
		return func() {
			once.Do(func() {
				close(free)
				for range n {
					<-done
				}
			})
		}
	}
	return h, hold
}

// TestImportLevels: the min_auth_level and password_only columns set the
// person's sign-in level and password-only setting (English or Chinese
// values); an unknown value, and a certificate level for a password-only
// person, are the row's error, naming the column.
func TestImportLevels(t *testing.T) {
	iw := newImportWorld(t)
	root := iw.root.Code
	p := writeFile(t, "levels.csv", "login_name,display_name,org_code,min_auth_level,password_only\n"+
		"lv2,Two,"+root+",双因素,\n"+ // 2
		"lv3,Three,"+root+",certificate,no\n"+ // 3
		"po,Only,"+root+",,yes\n"+ // 4
		"bad,Bad,"+root+",strong,\n"+ // 5
		"bad2,Bad,"+root+",,maybe\n"+ // 6
		"bad3,Bad,"+root+",3,是\n") // 7
	rep := iw.run(t, p, importfile.CSV, importfile.Users, "", false)
	if rep.Written != 3 || rep.Failed != 3 {
		t.Fatalf("report %+v", rep)
	}
	fields := map[int]string{5: "min_auth_level", 6: "password_only", 7: "min_auth_level"}
	for _, e := range rep.Errors {
		if e.Reason != identity.ReasonImportBadField || e.Field != fields[e.Row] || e.Message == "" {
			t.Fatalf("row %d: %+v", e.Row, e)
		}
	}
	for login, want := range map[string][2]any{"lv2": {identity.AuthLevelTwoFactor, false}, "lv3": {identity.AuthLevelCertificate, false}, "po": {0, true}} {
		u, err := iw.st.GetUserByLogin(context.Background(), login)
		if err != nil || u.MinAuthLevel != want[0].(int) || u.PasswordOnly != want[1].(bool) {
			t.Fatalf("%s: %+v %v", login, u, err)
		}
	}
}

// TestImportUserTypes: the user_type column makes a row a unit's (English
// or Chinese values; a unit's code checked like a resident ID, with or
// without the org code's hyphen); a row without it, and a file without
// the column, are persons'; a wrong value, a unit's code on a person's row
// and a person's document on a unit's row are the row's errors, naming
// the column; a unit's code given twice in its two forms is one unit's.
func TestImportUserTypes(t *testing.T) {
	iw := newImportWorld(t)
	root := iw.root.Code
	p := writeFile(t, "units.csv", "login_name,display_name,org_code,id_type,id_number,user_type\n"+
		"acme,某某航运有限公司,"+root+",uscc,91310115MA01A2B322,unit\n"+ // 2
		"oc,另一单位,"+root+",组织机构代码,12345678-8,单位\n"+ // 3
		"nocode,无代码,"+root+",,,unit\n"+ // 4
		"pp,Person,"+root+",passport,E1234567,\n"+ // 5
		"bad-type,B,"+root+",,,company\n"+ // 6
		"bad-uscc,B,"+root+",uscc,91350100M000100Y44,unit\n"+ // 7
		"p-uscc,B,"+root+",uscc,91350100M000100Y43,person\n"+ // 8
		"u-pass,B,"+root+",passport,E7654321,unit\n"+ // 9
		"acme-2,某某航运,"+root+",org_code,MA01A2B3-2,unit\n") // 10: acme's org code
	rep := iw.run(t, p, importfile.CSV, importfile.Users, "", false)
	if rep.Written != 4 || rep.Failed != 5 {
		t.Fatalf("report %+v", rep)
	}
	want := map[int][2]string{6: {identity.ReasonImportBadField, "user_type"}, 7: {identity.ReasonImportBadIDNumber, "id_number"},
		8: {identity.ReasonImportBadField, "id_type"}, 9: {identity.ReasonImportBadField, "id_type"},
		10: {identity.ReasonImportDuplicate, "id_number"}}
	for _, e := range rep.Errors {
		w, ok := want[e.Row]
		if !ok || e.Reason != w[0] || e.Field != w[1] || e.Message == "" {
			t.Fatalf("row %d: %+v", e.Row, e)
		}
	}
	for login, wt := range map[string]identity.UserType{"acme": identity.UserTypeUnit, "oc": identity.UserTypeUnit,
		"nocode": identity.UserTypeUnit, "pp": 0} {
		u, err := iw.st.GetUserByLogin(context.Background(), login)
		if err != nil || u.UserType != wt || u.FeatureCode == "" {
			t.Fatalf("%s: %+v %v", login, u, err)
		}
	}
	if u, _ := iw.st.GetUserByLogin(context.Background(), "oc"); u.IDType != identity.IDTypeOrgCode || u.IDNumberMask == "" {
		t.Fatalf("org code: %+v", u)
	}
	// A file of before unit accounts: no such column, persons.
	old := writeFile(t, "old.csv", "login_name,display_name,org_code,id_type,id_number\n"+
		"old1,Old,"+root+",passport,G1234567\n")
	if rep := iw.run(t, old, importfile.CSV, importfile.Users, "", false); rep.Written != 1 || rep.Failed != 0 {
		t.Fatalf("old file: %+v", rep)
	}
	if u, err := iw.st.GetUserByLogin(context.Background(), "old1"); err != nil || u.UserType.Norm() != identity.UserTypePerson {
		t.Fatalf("old1: %+v %v", u, err)
	}
}
