package identity

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/services/identity/legacyhash"
)

// Bulk import: users (with their account link in the same row), orgs and
// links, from the rows of a file (package importfile reads them; the
// server checks each field's form). Rows are written in batches, each
// batch in one transaction with one CHANGES event and one audit record
// (not one per row, so that the outbox and the downstream systems are not
// flooded). A batch is written in chunks sized by time (importSizer: as
// many rows as the last transactions wrote in ImportTxTarget, at most
// ImportChunkMax), all in one transaction of up to ImportBatchSize rows
// while no other write waits for the database; on SQLite, where a login's
// write waits for the import's write lock, the store ends the transaction
// after the chunk during which one began to wait, and before each
// transaction the import lets the waiting writes go first
// (Store.YieldWrites). Logins thus go on during an import, waiting at most
// about one chunk for their write, and an import alone writes large
// transactions, which cost less per row. Every
// row that cannot be written is reported with its row number, field and
// reason; the others are written. Idempotent and resumable: each row has an external key (users:
// external_key or the login name; orgs: the code; links: app + account),
// and a row whose key the same import id already wrote is skipped, so an
// interrupted import is finished by sending the file again. A dry run
// checks every row against the database as a real run would and writes
// nothing.

// ImportBatchSize is the most rows of one import transaction (people and
// links; orgs go at most a chunk at a time). On SQLite the store ends the
// transaction earlier, after the chunk during which another write began
// to wait for the database (Store.ImportBatch): while none waits, the
// rows of a transaction share its commit, its search index segment and
// the index pages it writes; when one does, it waits for one chunk.
// 20000 rather than 10000: each commit writes every index page the
// transaction changed (the last pages of each org's part of the org
// indexes, of each name's part of the name index) to the WAL and later
// back to the database, and twice the rows share them (1 M people: the
// import's CPU 9% less, the CPU of its writes to the WAL and the
// database file 27% less; issue 16).
const ImportBatchSize = 20000

// ImportChunkMax is the most rows of one chunk.
const ImportChunkMax = 2000

// ImportTxTarget is how long one chunk should take: as many rows as the
// last transactions wrote in this time (a waiting login waits for about
// one chunk).
const ImportTxTarget = 50 * time.Millisecond

// While logins hash (a hash ran within ImportLoginWindow), an import on a
// store that sets the logins' writes aside (LoginWritesAside: the SQLite
// store with its login outbox) writes as it does alone: most logins write
// nothing to the database, and one that does (a failure counted, a
// rehash) ends the import's transaction after the chunk in flight, as any
// other write. Until that outbox existed every login wrote, and the
// import wrote one chunk a transaction while logins hashed, each commit
// writing the pages of a dozen indexes at random places again (issue 16:
// 1 M people, 2209 rows/s beside logins at a fifth of their saturation,
// 3650 alone). On any other store (PostgreSQL, where a login's gate row
// lock may wait for rows the import's checks lock until its commit) the
// import still writes one chunk a transaction while logins hash. While logins also
// wait for the CPUs (a password check found every hash worker busy within
// ImportWaitWindow, crypto.Hasher.Contended), the import gives way to
// them: after each chunk (about ImportTxTarget of writing) it pauses, for
// as long as they still wait (in steps of importPauseStep) and at most so
// that it writes for Config.ImportLoginShare of the time. On a store that
// sets the logins' writes aside it pauses within the transaction, which
// stays open (WithImportChunkDone; a write that waits for the database
// ends the pause and the transaction), so the import keeps the large
// transactions that cost less per row; on any other store it writes one
// chunk a transaction and pauses after each. Without the pause an import took
// most of the CPUs from waiting logins: a pure-Go hash gives its processor
// to any other goroutine every 1-2 ms (ADR 0005), and the import's
// goroutines run until preempted, so they got the CPUs first (logins at
// 0.13x of their rate alone, p99 2.1 s, during an import of 1 M people).
// Logins served without waiting (a steady, modest rate) cost the import
// only its smaller transactions, not the pauses.
const (
	ImportLoginWindow       = time.Second
	ImportWaitWindow        = 250 * time.Millisecond
	DefaultImportLoginShare = 0.25
	// importPauseMax bounds one pause.
	importPauseMax = time.Second
)

// importFirstBatch is the rows of an import's first chunk, importMinBatch
// the fewest of any (below it a chunk's fixed costs dominate).
const (
	importFirstBatch = 200
	importMinBatch   = 50
)

// importSizer sizes an import's chunks from the time the last
// transaction took.
type importSizer struct{ size int }

// next is the rows of the next chunk.
func (z *importSizer) next() int {
	if z.size == 0 {
		z.size = importFirstBatch
	}
	return z.size
}

// took records that a transaction of n rows took d: the next chunk is as
// many rows as fit in ImportTxTarget at that pace, growing at most
// twofold, between importMinBatch and ImportChunkMax.
func (z *importSizer) took(n int, d time.Duration) {
	if n <= 0 {
		return
	}
	cur := z.next()
	want := ImportChunkMax
	if d > 0 {
		want = int(int64(ImportTxTarget) * int64(n) / int64(d))
	}
	z.size = max(importMinBatch, min(want, 2*cur, ImportChunkMax))
}

// DefaultImportMaxBytes bounds an import file by default (1 GiB);
// MaxImportMaxBytes is the largest identity.import_max_bytes allowed.
const (
	DefaultImportMaxBytes int64 = 1 << 30
	MaxImportMaxBytes     int64 = 16 << 30
)

// ImportMaxBytes is the largest import file accepted
// (identity.import_max_bytes).
func (s *Service) ImportMaxBytes() int64 { return s.cfg.ImportMaxBytes }

// MaxImportErrors is the number of row errors a report lists (all are
// counted).
const MaxImportErrors = 1000

// ImportItem is one row to write: an org, a user (with an optional link),
// or a link; Key is its external key.
type ImportItem struct {
	Row   int
	Sheet string
	seq   int // its place among the rows read (the report's order)
	Key   string
	At    time.Time
	Org   *Org
	User  *User
	Link  *AccountLink
}

// ImportResult is what the store did with an item.
type ImportResult struct {
	Skipped bool  // written before by the same import
	Err     error // not written (a store error with a reason)
}

// ImportRow is one row of the file: its number and fields (canonical
// names), already checked for form; Problem, when set, is a form problem
// found before (the row is reported, not written).
type ImportRow struct {
	Row     int
	Sheet   string // XLSX with several data sheets: the row's sheet
	Fields  map[string]string
	Problem *RowError
}

// RowError is a row that was not written.
type RowError struct {
	Row     int
	Sheet   string
	Field   string
	Reason  string
	Message string
}

// ImportReport is the outcome of an import.
type ImportReport struct {
	ImportID string
	Kind     string
	DryRun   bool
	Rows     int // data rows read
	Written  int // written now (a dry run: would be written)
	Skipped  int // written before under the same import id
	Failed   int
	Errors   []RowError // the first MaxImportErrors
}

// Import reasons (row errors, and the import's own).
const (
	ReasonImportDuplicate   = "DUPLICATE"           // the key (login, code, account, ID number) appears twice in the file
	ReasonImportUnknownOrg  = "UNKNOWN_ORG"         // org_code / parent_code names no org
	ReasonImportUnknownApp  = "UNKNOWN_APP"         // app_type + app_code name no application
	ReasonImportUnknownUser = "UNKNOWN_USER"        // login_name names no user
	ReasonImportBadField    = "BAD_FIELD"           // a field's form
	ReasonImportBadIDNumber = "BAD_ID_NUMBER"       // resident ID number check
	ReasonImportBadHash     = "BAD_PASSWORD_HASH"   // password_hash in no known format
	ReasonImportExists      = "ALREADY_EXISTS"      // login, code or account exists
	ReasonImportFeature     = "FEATURE_CODE_EXISTS" // same ID type + number + name + login as a person already there
	ReasonImportBadFile     = "BAD_IMPORT_FILE"
	ReasonImportTooLarge    = "IMPORT_TOO_LARGE"
)

func init() {
	apierr.Register(apierr.Reason{Name: ReasonImportBadFile, Code: apierr.InvalidArgument,
		Doc: "Import: the file cannot be read at all (format, header row: unknown or missing columns, a row that is not CSV; the message names the row). Row problems are reported per row in the import report instead."},
		apierr.Reason{Name: ReasonImportTooLarge, Code: apierr.InvalidArgument, Legacy: -5, HTTP: 413,
			Doc: "Import: the file is larger than identity.import_max_bytes (default 1 GiB); split it (each part under its own import id, or the same id to resume)."})
}

// ImportOptions are an import's settings.
type ImportOptions struct {
	Kind     string // users, orgs, links
	ImportID string // "" = a new id (no resuming)
	DryRun   bool
}

// Import writes the rows next yields (io.EOF-style: ok false at the end)
// as opts say and reports what it did. A storage failure ends it with an
// error (the rows written so far stay written: resume with the same
// import id).
//
// People and links go through a pipeline of two goroutines: one reads
// the rows (next is called there, one call at a time), checks them and
// makes the items (feature codes, sealing), batch after batch, while the
// caller's goroutine writes the batch before; so an import uses two CPUs.
// Orgs are read and written in turn (a row may name the org of a row
// before it as its parent).
func (s *Service) Import(ctx context.Context, opts ImportOptions, next func() (*ImportRow, bool, error)) (*ImportReport, error) {
	if opts.ImportID == "" {
		opts.ImportID = ids.New()
	}
	switch opts.Kind {
	case "users", "orgs", "links":
	default:
		return nil, badRequest("kind must be users, orgs or links")
	}
	rep := &ImportReport{ImportID: opts.ImportID, Kind: opts.Kind, DryRun: opts.DryRun}
	im := &importer{s: s, opts: opts, rep: rep, orgs: map[string]*Org{}, apps: map[string]*App{},
		seen: newSeenKeys()}
	// The import's transactions: on SQLite one connection set up for
	// them (Store.BeginImport); lookups go to the others.
	wctx, end, err := s.store.BeginImport(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	if opts.Kind == "orgs" {
		err = im.read(ctx, next, func(b []ImportItem) error { return im.flush(wctx, b) })
	} else {
		err = im.pipeline(ctx, wctx, next)
	}
	if err != nil {
		return nil, err
	}
	im.report()
	return rep, nil
}

// pipeline reads next's rows on a goroutine of its own and writes their
// batches (in wctx) on the caller's as they come; at most one batch waits
// between the two. The first error of either ends both.
func (im *importer) pipeline(ctx, wctx context.Context, next func() (*ImportRow, bool, error)) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []ImportItem, 1)
	var readErr error // set before batches is closed
	go func() {
		defer close(batches)
		defer func() {
			if p := recover(); p != nil {
				readErr = fmt.Errorf("import: reading the rows: %v", p)
			}
		}()
		readErr = im.read(rctx, next, func(b []ImportItem) error {
			if len(b) == 0 {
				return nil
			}
			select {
			case batches <- b:
				return nil
			case <-rctx.Done():
				return rctx.Err()
			}
		})
	}()
	var writeErr error
	for b := range batches {
		if writeErr != nil {
			continue // let the reader see the cancel and end
		}
		if writeErr = im.flush(wctx, b); writeErr != nil {
			cancel()
		}
	}
	if writeErr != nil {
		return writeErr
	}
	return readErr
}

// read reads next's rows, checks each and hands the items to write in
// batches of batchLimit (the last may be shorter or empty); the rows it
// cannot take go to im.readErrs.
func (im *importer) read(ctx context.Context, next func() (*ImportRow, bool, error), write func([]ImportItem) error) error {
	var batch []ImportItem
	for seq := 0; ; seq++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, ok, err := next()
		if err != nil {
			return apierr.Wrap(err, apierr.InvalidArgument, ReasonImportBadFile, "the import file cannot be read: "+err.Error())
		}
		if !ok {
			break
		}
		im.rows++
		runtime.Gosched() // as the writer does (sqlstore's insertEach): hashes run too
		if r.Problem != nil {
			r.Problem.Sheet = r.Sheet
			im.readErrs.add(seq, *r.Problem)
			continue
		}
		it, rerr := im.item(ctx, r)
		if rerr != nil {
			if rerr.Reason == "" { // a storage failure during a lookup
				return errors.New(rerr.Message)
			}
			rerr.Sheet = r.Sheet
			im.readErrs.add(seq, *rerr)
			continue
		}
		it.Sheet, it.seq = r.Sheet, seq
		batch = append(batch, *it)
		if len(batch) >= im.batchLimit() {
			if err := write(batch); err != nil {
				return err
			}
			im.batches++
			batch = make([]ImportItem, 0, im.batchLimit()) // the writer may still hold the last one
		}
	}
	return write(batch)
}

type importer struct {
	s    *Service
	opts ImportOptions
	rep  *ImportReport
	// The reader's (read, item).
	orgs     map[string]*Org // by code: looked up, or created by this file
	apps     map[string]*App // by type + "\x00" + code
	seen     seenKeys        // keys in this file -> first row
	rows     int
	batches  int // handed to the writer
	readErrs rowErrors
	// The writer's (flush, write). Orgs use both on one goroutine.
	sizer     importSizer
	writeErrs rowErrors
	// unanswered counts the rows level 1 was not asked about, or did not
	// answer (claimAcross); read by the writer for its audit record.
	unanswered atomic.Int64
	// dryAudit is a dry run's batch audit record, written outside its
	// rolled-back transaction when the rows were asked across centres
	// (review sec29b H1).
	dryAudit *events.Event
}

// rowErrors counts the rows one side of an import could not take and
// keeps the first MaxImportErrors of them with their place in the file.
type rowErrors struct {
	failed int
	list   []seqRowError
}

type seqRowError struct {
	seq int // the row's place among the rows read
	RowError
}

func (r *rowErrors) add(seq int, e RowError) {
	r.failed++
	if len(r.list) < MaxImportErrors {
		r.list = append(r.list, seqRowError{seq, e})
	}
}

// report fills in the counts and the first MaxImportErrors row errors of
// both sides, in the file's order.
func (im *importer) report() {
	im.rep.Rows = im.rows
	im.rep.Failed = im.readErrs.failed + im.writeErrs.failed
	all := append(slices.Clone(im.readErrs.list), im.writeErrs.list...)
	slices.SortStableFunc(all, func(a, b seqRowError) int { return a.seq - b.seq })
	im.rep.Errors = nil
	for _, e := range all[:min(len(all), MaxImportErrors)] {
		im.rep.Errors = append(im.rep.Errors, e.RowError)
	}
}

func rowErr(row int, field, reason, msg string) *RowError {
	return &RowError{Row: row, Field: field, Reason: reason, Message: msg}
}

// lookupErr turns a lookup failure into a row error (not found) or a
// storage failure (Reason "").
func lookupErr(row int, field, reason, msg string, err error) *RowError {
	if errors.Is(err, ErrNotFound) {
		return rowErr(row, field, reason, msg)
	}
	return &RowError{Row: row, Message: err.Error()}
}

func (im *importer) org(ctx context.Context, row int, field, code string) (*Org, *RowError) {
	if o, ok := im.orgs[code]; ok {
		return o, nil
	}
	o, err := im.s.store.GetOrgByCode(ctx, code)
	if err != nil {
		return nil, lookupErr(row, field, ReasonImportUnknownOrg, "no org has code "+quoteShort(code), err)
	}
	im.orgs[code] = o
	return o, nil
}

func (im *importer) app(ctx context.Context, row int, typ, code string) (*App, *RowError) {
	k := typ + "\x00" + code
	if a, ok := im.apps[k]; ok {
		return a, nil
	}
	a, err := im.s.store.GetAppByCode(ctx, typ, code)
	if err != nil {
		return nil, lookupErr(row, "app_code", ReasonImportUnknownApp, "no application "+quoteShort(typ)+"/"+quoteShort(code), err)
	}
	im.apps[k] = a
	return a, nil
}

// seenKeys is the set of keys of an import's rows (login names, feature
// codes, accounts), each with its first row, kept as two 64-bit hashes
// with random seeds: a million-row file's keys fill about 100 MB that the
// garbage collector need not scan (strings would be 3 pointers a row to
// mark at every cycle). Two keys collide with odds of about 2^-128 a pair.
type seenKeys struct {
	seeds [2]maphash.Seed
	rows  map[[2]uint64]int
}

func newSeenKeys() seenKeys {
	return seenKeys{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, rows: map[[2]uint64]int{}}
}

// add records key's first row; false (and that row) when it has one.
func (s seenKeys) add(key string, row int) (int, bool) {
	h := [2]uint64{maphash.String(s.seeds[0], key), maphash.String(s.seeds[1], key)}
	if first, ok := s.rows[h]; ok {
		return first, false
	}
	s.rows[h] = row
	return row, true
}

// once reports a row whose key an earlier row of the file had.
func (im *importer) once(row int, field, key string) *RowError {
	if first, ok := im.seen.add(key, row); !ok {
		return rowErr(row, field, ReasonImportDuplicate, fmt.Sprintf("same %s as row %d", field, first))
	}
	return nil
}

// idTypes maps the id_type column's values.
var idTypes = map[string]IDType{
	"": IDTypeNone, "resident_id": IDTypeResidentID, "身份证": IDTypeResidentID, "1": IDTypeResidentID,
	"passport": IDTypePassport, "护照": IDTypePassport, "2": IDTypePassport,
	"military": IDTypeMilitary, "军官证": IDTypeMilitary, "3": IDTypeMilitary,
	"other": IDTypeOther, "其他": IDTypeOther, "9": IDTypeOther,
	"uscc": IDTypeUSCC, "统一社会信用代码": IDTypeUSCC, "4": IDTypeUSCC,
	"org_code": IDTypeOrgCode, "组织机构代码": IDTypeOrgCode, "5": IDTypeOrgCode,
}

// userTypes maps the user_type column's values ("" a person: files from
// before unit accounts have no such column).
var userTypes = map[string]UserType{
	"": UserTypePerson, "person": UserTypePerson, "个人": UserTypePerson, "1": UserTypePerson,
	"unit": UserTypeUnit, "单位": UserTypeUnit, "2": UserTypeUnit,
}

func (im *importer) item(ctx context.Context, r *ImportRow) (*ImportItem, *RowError) {
	f := r.Fields
	now := im.s.now()
	it := &ImportItem{Row: r.Row, At: now}
	status, ok := statusValues[strings.ToLower(f["status"])]
	if !ok {
		return nil, rowErr(r.Row, "status", ReasonImportBadField, "status must be active (正常) or disabled (停用)")
	}
	switch im.opts.Kind {
	case "orgs":
		code := f["code"]
		if e := im.once(r.Row, "code", "org\x00"+code); e != nil {
			return nil, e
		}
		parent, e := im.org(ctx, r.Row, "parent_code", f["parent_code"])
		if e != nil {
			return nil, e
		}
		o := &Org{ID: ids.New(), Code: code, Name: f["name"], ParentID: parent.ID, Status: status, CreatedAt: now, UpdatedAt: now}
		o.Path = parent.Path + o.ID + "/"
		// Later rows may name it as their parent: the org there is (a
		// resumed import wrote it before; the store skips or refuses
		// this row), or the one this row makes.
		switch existing, err := im.s.store.GetOrgByCode(ctx, code); {
		case err == nil:
			im.orgs[code] = existing
		case errors.Is(err, ErrNotFound):
			im.orgs[code] = o
		default:
			return nil, &RowError{Row: r.Row, Message: err.Error()}
		}
		it.Key, it.Org = "org:"+code, o
		return it, nil
	case "links":
		login := f["login_name"]
		a, e := im.app(ctx, r.Row, f["app_type"], f["app_code"])
		if e != nil {
			return nil, e
		}
		if e := im.once(r.Row, "app_account", "acct\x00"+a.ID+"\x00"+f["app_account"]); e != nil {
			return nil, e
		}
		u, err := im.s.store.GetUserByLogin(ctx, login)
		if err != nil {
			return nil, lookupErr(r.Row, "login_name", ReasonImportUnknownUser, "no user has this login name", err)
		}
		uid := u.ID
		it.Key = "link:" + a.ID + ":" + f["app_account"]
		it.Link = &AccountLink{ID: ids.New(), UserID: uid, AppID: a.ID, AppAccountID: f["app_account"], Status: status, CreatedAt: now}
		return it, nil
	}
	// users
	login := f["login_name"]
	if e := im.once(r.Row, "login_name", "login\x00"+FoldLogin(login)); e != nil {
		return nil, e
	}
	o, e := im.org(ctx, r.Row, "org_code", f["org_code"])
	if e != nil {
		return nil, e
	}
	t, ok := idTypes[strings.ToLower(f["id_type"])]
	if !ok {
		return nil, rowErr(r.Row, "id_type", ReasonImportBadField, "id_type must be resident_id, passport, military, other, uscc or org_code")
	}
	ut, ok := userTypes[strings.ToLower(f["user_type"])]
	if !ok {
		return nil, rowErr(r.Row, "user_type", ReasonImportBadField, "user_type must be person (个人) or unit (单位)")
	}
	idNumber := normalIDNumber(t, f["id_number"])
	if idNumber == "" {
		// A type without its number (a legacy export's default column)
		// identifies nobody: the person is imported without a document,
		// as CreateUser would refuse the type alone.
		t = IDTypeNone
	}
	switch {
	case idNumber != "" && t == IDTypeNone:
		return nil, rowErr(r.Row, "id_type", ReasonImportBadField, "id_type is required with id_number")
	case t == IDTypeResidentID && idNumber != "" && !validResidentID(idNumber):
		return nil, rowErr(r.Row, "id_number", ReasonImportBadIDNumber, "not a valid 18-character resident ID number")
	case t == IDTypeUSCC && !validUSCC(idNumber):
		return nil, rowErr(r.Row, "id_number", ReasonImportBadIDNumber, "not a valid 18-character unified social credit code")
	case t == IDTypeOrgCode && !validOrgCode(idNumber):
		return nil, rowErr(r.Row, "id_number", ReasonImportBadIDNumber, "not a valid 9-character organisation code")
	}
	if err := checkUserIDType(ut, t); err != nil {
		return nil, rowErr(r.Row, "id_type", ReasonImportBadField, messageOf(err))
	}
	if err := checkPhone(f["phone"]); err != nil {
		return nil, rowErr(r.Row, "phone", ReasonImportBadField, messageOf(err))
	}
	if err := checkEmail(f["email"]); err != nil {
		return nil, rowErr(r.Row, "email", ReasonImportBadField, messageOf(err))
	}
	hash := f["password_hash"]
	if hash != "" && !legacyhash.IsArgon2id(hash) {
		if _, err := legacyhash.Parse(hash); err != nil {
			return nil, rowErr(r.Row, "password_hash", ReasonImportBadHash, "not a password hash in a known format (see docs/operators.md)")
		}
	}
	if hash != "" {
		// A directory keeps the password of its org's people
		// (credsource.go): none is brought for them.
		src, err := im.s.sourceOfOrg(ctx, o)
		if err != nil {
			return nil, &RowError{Row: r.Row, Message: err.Error()}
		}
		if src != nil {
			return nil, rowErr(r.Row, "password_hash", ReasonPasswordManagedByDirectory,
				"the people of this org sign in with the password of the directory "+src.Name()+" (identity.ldap_auth): leave password_hash empty")
		}
	}
	level, ok := levelValues[strings.ToLower(f["min_auth_level"])]
	if !ok {
		return nil, rowErr(r.Row, "min_auth_level", ReasonImportBadField, "min_auth_level must be default, any, two-factor or certificate")
	}
	passwordOnly, ok := yesNoValues[strings.ToLower(f["password_only"])]
	if !ok {
		return nil, rowErr(r.Row, "password_only", ReasonImportBadField, "password_only must be yes or no")
	}
	if err := checkPersonLevel(level, passwordOnly); err != nil {
		return nil, rowErr(r.Row, "min_auth_level", ReasonImportBadField, messageOf(err))
	}
	u := &User{ID: ids.New(), LoginName: login, DisplayName: f["display_name"], UserType: StoredUserType(ut), IDType: t, Email: f["email"],
		OrgID: o.ID, Status: status, PasswordHash: hash, MinAuthLevel: level, PasswordOnly: passwordOnly, CreatedAt: now, UpdatedAt: now}
	if hash != "" {
		// a hash the importer brought: a password the person may not be
		// alone to know (User.PasswordByOther)
		u.PasswordChangedAt, u.PasswordByOther = now, true
	}
	if err := im.s.sealPersonal(u, idNumber, f["phone"]); err != nil {
		return nil, &RowError{Row: r.Row, Message: err.Error()}
	}
	u.FeatureCode = im.s.accountFeatureCode(ut, t, idNumber, u.DisplayName, login)
	if e := im.once(r.Row, "id_number", "feature\x00"+u.FeatureCode); e != nil {
		e.Reason = ReasonImportFeature
		return nil, e
	}
	// One account per person: a second row with the person's ID number
	// is the file's duplicate (the store finds those already there, in
	// one query per chunk, as for the login names).
	if u.IDKey = im.s.idKey(t, idNumber); u.IDKey != "" {
		if e := im.once(r.Row, "id_number", "idkey\x00"+u.IDKey); e != nil {
			return nil, e
		}
	}
	u.CentresKey = im.s.centresKey(t, idNumber)
	if e := im.claimAcross(ctx, r.Row, u); e != nil {
		return nil, e
	}
	key := f["external_key"]
	if key == "" {
		key = login
	}
	it.Key, it.User = "user:"+key, u
	if typ, code, acct := f["app_type"], f["app_code"], f["app_account"]; typ != "" || code != "" || acct != "" {
		if typ == "" || code == "" || acct == "" {
			return nil, rowErr(r.Row, "app_account", ReasonImportBadField, "app_type, app_code and app_account go together")
		}
		a, e := im.app(ctx, r.Row, typ, code)
		if e != nil {
			return nil, e
		}
		if e := im.once(r.Row, "app_account", "acct\x00"+a.ID+"\x00"+acct); e != nil {
			return nil, e
		}
		it.Link = &AccountLink{ID: ids.New(), UserID: u.ID, AppID: a.ID, AppAccountID: acct, Status: StatusActive, CreatedAt: now}
	}
	return it, nil
}

// claimAcross asks level 1 whether the row's login name and ID number are
// another person's at another centre (uniq.go). Once level 1 has not
// answered, the import asks no more (each row would wait for it): the
// rows after are written unchecked (or refused, peer_unreachable
// refuse), counted in the batches' audit records (detail.unchecked).
func (im *importer) claimAcross(ctx context.Context, row int, u *User) *RowError {
	if !im.s.acrossCentres() {
		return nil
	}
	if im.s.homes.Level == 1 {
		// Level 1's own import: the store's check of the chunk's login
		// names covers the replicas it holds; ID numbers are compared with
		// theirs by the centres key, here, without reservations (a round
		// trip to JetStream per row).
		if u.CentresKey == "" {
			return nil
		}
		held, err := im.s.store.CentresKeyHeld(ctx, u.CentresKey, u.ID)
		if err != nil {
			return &RowError{Row: row, Message: messageOf(err)}
		}
		if held {
			return rowErr(row, "id_number", ReasonIDNumberTaken, ErrIDNumberTaken.Message)
		}
		return nil
	}
	if im.unanswered.Load() > 0 {
		im.unanswered.Add(1)
		if im.s.cfg.Uniqueness.RefuseUnreachable {
			return rowErr(row, "login_name", ReasonUniquenessUnavailable, errUniquenessUnavailable.Message)
		}
		return nil
	}
	reason, err := im.s.claimAcrossAs(ctx, u, true, true, im.opts.DryRun)
	if err != nil {
		e, ok := apierr.As(err)
		switch {
		case ok && e.Reason == ReasonIDNumberTaken:
			return rowErr(row, "id_number", e.Reason, e.Message)
		case ok && e.Reason == ReasonUniquenessUnavailable:
			im.unanswered.Add(1)
			return rowErr(row, "login_name", e.Reason, e.Message)
		case ok && e.Code == apierr.AlreadyExists:
			return rowErr(row, "login_name", e.Reason, e.Message)
		}
		return &RowError{Row: row, Message: messageOf(err)} // level 1's storage: the import stops
	}
	if reason == ReasonUniquenessUnchecked {
		im.unanswered.Add(1)
	}
	return nil
}

func messageOf(err error) string {
	if e, ok := apierr.As(err); ok {
		return e.Message
	}
	return err.Error()
}

func quoteShort(s string) string {
	if len([]rune(s)) > 40 {
		s = string([]rune(s)[:40]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// storeField is the column a store error of an item is about, when the
// error tells it (an ID number another account has).
func storeField(err error) string {
	if errors.Is(err, ErrIDNumberTaken) {
		return "id_number"
	}
	if e, ok := apierr.As(err); ok {
		return e.Meta[apierr.MetaField] // the column the store named, if any
	}
	return ""
}

// storeReason is the reason of a store error of an item (ALREADY_EXISTS,
// NOT_FOUND, ...); its message says what (e.g. "feature code already
// exists").
func storeReason(err error) string {
	if e, ok := apierr.As(err); ok && e.Reason != "" {
		return e.Reason
	}
	return "ERROR"
}

// batchLimit is the rows to gather before writing them: a transaction's
// worth of people or links (written chunk by chunk; the first batch a
// chunk's worth, so that the writer begins while the reader reads on), a
// chunk of orgs (written in one go: an org may be the parent of the next).
func (im *importer) batchLimit() int {
	if im.opts.Kind == "orgs" {
		return im.sizer.next()
	}
	if im.batches == 0 {
		return min(importBatchRows, ImportChunkMax)
	}
	return importBatchRows
}

// ImportLoginShare is the share of the time an import writes while
// logins wait for the CPUs (Config.ImportLoginShare).
func (s *Service) ImportLoginShare() float64 { return s.cfg.ImportLoginShare }

// LoginWritesAside is implemented by a Store whose logins, most of them,
// write nothing an import's transaction holds up (sqlstore on SQLite with
// its login outbox); see ImportLoginWindow.
type LoginWritesAside interface {
	LoginWritesAside() bool
}

// loginWritesAside reports whether the service's store sets the logins'
// writes aside.
func (s *Service) loginWritesAside() bool { return s.writesAside }

// loginsActive reports whether logins hash (see ImportLoginWindow).
func (im *importer) loginsActive() bool {
	return im.s.hasher != nil && im.s.hasher.Active(ImportLoginWindow)
}

// loginsWaiting reports whether logins wait for a hash worker (see
// ImportWaitWindow).
func (im *importer) loginsWaiting() bool {
	return im.s.hasher != nil && im.s.hasher.Contended(ImportWaitWindow)
}

// giveWay pauses after a chunk or transaction that took d while logins
// wait: in steps of importPauseStep for as long as they still wait for
// the CPUs now (a hash queued or every worker busy), at most so long that
// the import writes for Config.ImportLoginShare of the time (and
// importPauseMax): a pause as long as the logins need the CPUs, not
// longer (issue 16: a fixed pause of three times the transaction). Within
// a transaction (cut non-nil) it also ends when cut says the store would
// end the transaction: another write waits for the one the pause holds.
func (im *importer) giveWay(ctx context.Context, d time.Duration, cut func() bool) {
	share := im.s.cfg.ImportLoginShare
	if share >= 1 {
		return
	}
	limit := min(time.Duration(float64(d)*(1-share)/share), importPauseMax)
	for paused := time.Duration(0); paused < limit; {
		step := min(importPauseStep, limit-paused)
		if im.s.sleep(ctx, step) != nil {
			return
		}
		paused += step
		if !im.s.hasher.Contended(0) || (cut != nil && cut()) {
			return
		}
	}
}

// importChunkKey carries WithImportChunkDone's function.
type importChunkKey struct{}

// WithImportChunkDone returns ctx carrying fn, which a Store's
// ImportBatch calls (ImportChunkDone) after each chunk it wrote, with the
// transaction still open: took is the chunk's time and cut reports
// whether the store would now end the transaction (another write waits
// for the database). fn may pause there; it returns once cut does. When
// it returns true the store ends the transaction after that chunk, as
// for a cut.
func WithImportChunkDone(ctx context.Context, fn func(took time.Duration, cut func() bool) (end bool)) context.Context {
	return context.WithValue(ctx, importChunkKey{}, fn)
}

// ImportChunkDone calls the function WithImportChunkDone put in ctx, if
// any (a Store's ImportBatch, after each chunk), and reports whether it
// asks to end the transaction.
func ImportChunkDone(ctx context.Context, took time.Duration, cut func() bool) (end bool) {
	if fn, ok := ctx.Value(importChunkKey{}).(func(time.Duration, func() bool) bool); ok {
		return fn(took, cut)
	}
	return false
}

// importTxOpenMax: once a transaction in which the import paused for
// logins has been open this long, it ends after the chunk (its rows then
// visible, and what a crash would roll back bounded). Under logins that
// keep the hash workers saturated an import pauses most of the time, and
// a transaction of ImportBatchSize rows stayed open for up to 39 s.
// (A variable: tests make it shorter.)
var importTxOpenMax = 5 * time.Second

// importPauseStep is the step of giveWay's pause: short, since the CPUs
// may idle for the rest of a step after the logins stopped waiting (5 ms
// steps: 3303 rows/s beside paced logins at 50%, 1 ms: 3742, logins' p99
// no worse).
const importPauseStep = time.Millisecond

// importBatchRows is ImportBatchSize (tests make it smaller).
var importBatchRows = ImportBatchSize

// flush writes rows in transactions of one or more chunks, each with its
// batched events.
func (im *importer) flush(ctx context.Context, batch []ImportItem) error {
	if len(batch) == 0 {
		return nil
	}
	for len(batch) > 0 {
		n, err := im.write(ctx, batch)
		if err != nil {
			return err
		}
		batch = batch[n:]
	}
	if !im.opts.DryRun {
		im.s.kick()
	}
	return nil
}

// write writes batch in one transaction, or its first chunks when the
// store ended the transaction early, and returns how many rows it wrote.
func (im *importer) write(ctx context.Context, batch []ImportItem) (int, error) {
	if err := im.s.store.YieldWrites(ctx); err != nil {
		return 0, err
	}
	logins := im.loginsActive()
	aside := im.s.loginWritesAside()
	if logins && !aside {
		batch = batch[:min(len(batch), im.sizer.next())] // see ImportLoginWindow
	}
	// Between its chunks, the store lets the import give way to logins
	// that wait for the CPUs, holding the transaction open (see
	// ImportLoginWindow): only on a store whose logins' writes are set
	// aside, where a login that writes ends the transaction instead.
	wctx, hooked, paused, began := ctx, false, time.Duration(0), time.Time{}
	if aside && im.s.hasher != nil {
		wctx = WithImportChunkDone(ctx, func(took time.Duration, cut func() bool) bool {
			hooked = true
			if !im.loginsWaiting() {
				return false
			}
			t0 := time.Now()
			im.giveWay(ctx, took, cut)
			paused += time.Since(t0)
			return paused > 0 && time.Since(began) >= importTxOpenMax
		})
	}
	start := im.s.now()
	began = time.Now() // the real time, whatever clock the service has
	kind := strings.TrimSuffix(im.opts.Kind, "s")
	results, err := im.s.store.ImportBatch(wctx, im.opts.ImportID, batch, im.opts.DryRun, im.sizer.next(), func(written []ImportItem) []events.Event {
		idList := make([]string, len(written))
		for i, it := range written {
			switch {
			case it.Org != nil:
				idList[i] = it.Org.ID
			case it.User != nil:
				idList[i] = it.User.ID
			default:
				idList[i] = it.Link.ID
			}
		}
		changes := []events.Event{im.s.change(ctx, kind, "imported", im.opts.ImportID, map[string]any{"import_id": im.opts.ImportID, "ids": idList})}
		if im.s.homes != nil {
			// Other centres need what was written (replica_import.go).
			changes = im.s.importedChanges(ctx, kind, im.opts.ImportID, written)
		}
		detail, reason := map[string]string{"rows": fmt.Sprint(len(written)), "first_row": fmt.Sprint(written[0].Row),
			"last_row": fmt.Sprint(written[len(written)-1].Row)}, "OK"
		if n := im.unanswered.Load(); n > 0 && !im.s.cfg.Uniqueness.RefuseUnreachable {
			// the rows of the import so far that level 1 did not check
			detail["unchecked"], reason = fmt.Sprint(n), ReasonUniquenessUnchecked
		}
		if im.opts.DryRun {
			detail["dry_run"] = "true"
		}
		ev := im.s.audit(ctx, kind+".import", "import:"+im.opts.ImportID, "", "success", reason, start, detail)
		if im.opts.DryRun {
			im.dryAudit = &ev
		}
		return append(changes, ev)
	})
	if err != nil {
		return 0, err
	}
	if ev := im.dryAudit; ev != nil && im.s.acrossCentres() {
		// The dry run asked level 1 about its rows: audited like an
		// import's rows, though nothing else of it is kept.
		im.dryAudit = nil
		if err := im.s.store.AppendEvents(context.WithoutCancel(ctx), []events.Event{*ev}); err != nil {
			return 0, err
		}
	}
	if len(results) == 0 || len(results) > len(batch) {
		return 0, fmt.Errorf("import: the store answered %d results for %d rows", len(results), len(batch))
	}
	took := time.Since(began) - paused
	im.sizer.took(len(results), took)
	if logins && !hooked && im.loginsWaiting() {
		im.giveWay(ctx, took, nil) // a cancel cut short ends the import at the next write
	}
	for i, r := range results {
		switch {
		case r.Skipped:
			im.rep.Skipped++
		case r.Err != nil:
			im.writeErrs.add(batch[i].seq, RowError{Row: batch[i].Row, Sheet: batch[i].Sheet, Field: storeField(r.Err), Reason: storeReason(r.Err), Message: messageOf(r.Err)})
			if o := batch[i].Org; o != nil && im.orgs[o.Code] == o {
				delete(im.orgs, o.Code) // later rows must not use it as a parent
			}
		default:
			im.rep.Written++
		}
	}
	return len(results), nil
}
