package identity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/events"
	ulog "github.com/uias/uias/pkg/log"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/importfile"
	"github.com/uias/uias/services/identity/sqlstore"
)

// residentID completes the 17 digits first with their check character
// (GB 11643), so tests can make as many distinct valid numbers as they need.
func residentID(first string) string {
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := range 17 {
		sum += int(first[i]-'0') * weights[i]
	}
	return first + string("10X98765432"[sum%11])
}

// residentIDWithX is a valid number whose check character is X.
func residentIDWithX(t *testing.T) string {
	t.Helper()
	for n := 0; n < 1000; n++ {
		if id := residentID(fmt.Sprintf("1101051990010%04d", n)); id[17] == 'X' {
			return id
		}
	}
	t.Fatal("no resident ID number with check character X")
	return ""
}

func rootOrg(t *testing.T, svc *identity.Service) string {
	t.Helper()
	orgs, _, err := svc.ListOrgs(context.Background(), identity.OrgFilter{}, 0, "")
	if err != nil || len(orgs) == 0 {
		t.Fatalf("orgs: %v %v", orgs, err)
	}
	return orgs[0].ID
}

// isIDNumberTaken checks err is ALREADY_EXISTS ID_NUMBER_TAKEN and names
// neither the number nor the other account.
func isIDNumberTaken(t *testing.T, err error, number, otherLogin string) {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok || e.Code != apierr.AlreadyExists || e.Reason != identity.ReasonIDNumberTaken {
		t.Fatalf("error %v, want ALREADY_EXISTS %s", err, identity.ReasonIDNumberTaken)
	}
	if !strings.Contains(e.Message, "another account already has this ID number") {
		t.Fatalf("message %q", e.Message)
	}
	for _, s := range []string{number, strings.ToLower(number), otherLogin} {
		if strings.Contains(e.Message, s) {
			t.Fatalf("message %q names %q", e.Message, s)
		}
	}
}

// One account per person: a second account with the same ID type and
// number is refused, whatever the case of the check character; another ID
// type with the same number, and people without a number, are not; an
// update of the holder, and of a person left without a key, passes.
func TestIDNumberIsOneAccounts(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	org := rootOrg(t, w.svc)
	num := residentIDWithX(t)
	a, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "holder", DisplayName: "Holder", OrgID: org,
		IDType: identity.IDTypeResidentID, IDNumber: num})
	if err != nil {
		t.Fatal(err)
	}
	if a.IDKey == "" || a.IDKey == a.FeatureCode {
		t.Fatalf("ID key %q (feature code %q)", a.IDKey, a.FeatureCode)
	}
	// Same number, another login and name.
	_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "second", DisplayName: "Second", OrgID: org,
		IDType: identity.IDTypeResidentID, IDNumber: num})
	isIDNumberTaken(t, err, num, "holder")
	// The check character in lower case is the same number.
	lower := strings.ToLower(num)
	_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "third", DisplayName: "Third", OrgID: org,
		IDType: identity.IDTypeResidentID, IDNumber: lower})
	isIDNumberTaken(t, err, num, "holder")
	// Another ID type with the same characters is another identifier.
	if _, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "other-type", DisplayName: "Other", OrgID: org,
		IDType: identity.IDTypeOther, IDNumber: num}); err != nil {
		t.Fatalf("same number, other ID type: %v", err)
	}
	// Passports: one account per passport number too.
	if _, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "pass-1", DisplayName: "P1", OrgID: org,
		IDType: identity.IDTypePassport, IDNumber: "E12345678"}); err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "pass-2", DisplayName: "P2", OrgID: org,
		IDType: identity.IDTypePassport, IDNumber: "e12345678"})
	isIDNumberTaken(t, err, "E12345678", "pass-1")
	// Spaces around a number are no other number (a user's trial passed
	// " E12345678" and "E12345678  " before), and are not stored.
	for _, padded := range []string{" E12345678", "E12345678  ", "\tE12345678 "} {
		_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "pass-3", DisplayName: "P3", OrgID: org,
			IDType: identity.IDTypePassport, IDNumber: padded})
		isIDNumberTaken(t, err, "E12345678", "pass-1")
	}
	sp, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "pass-4", DisplayName: "P4", OrgID: org,
		IDType: identity.IDTypePassport, IDNumber: "  G7654321 "})
	if err != nil || sp.IDNumberMask != ulog.MaskIDNumber("G7654321") {
		t.Fatalf("a number given with spaces: %+v %v", sp, err)
	}
	// Without an ID number: many.
	for _, l := range []string{"plain-1", "plain-2", "plain-3"} {
		u, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: l, DisplayName: l, OrgID: org})
		if err != nil || u.IDKey != "" {
			t.Fatalf("person without an ID number: %+v %v", u, err)
		}
	}
	// A distinct number is free.
	if _, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "fourth", DisplayName: "Fourth", OrgID: org,
		IDType: identity.IDTypeResidentID, IDNumber: residentID("11010519800101001")}); err != nil {
		t.Fatal(err)
	}
	// The holder's updates keep the key.
	up, err := w.svc.UpdateUser(ctx, a.ID, identity.UserUpdate{Mask: []string{"display_name", "email"}, DisplayName: "Renamed",
		Email: "h@example.org"})
	if err != nil || up.IDKey != a.IDKey {
		t.Fatalf("update of the holder: %+v %v", up, err)
	}
	got, err := w.svc.GetUser(ctx, a.ID)
	if err != nil || got.IDKey != a.IDKey {
		t.Fatalf("holder after the update: %+v %v", got, err)
	}
}

// An administrator corrects a person's ID document with UpdateUser
// (id_type, id_number): the number is checked as at creation, stays one
// account's, and the old one is free again; a refused correction changes
// nothing.
func TestCorrectIDNumber(t *testing.T) {
	db := testDB(t)
	w := setupOn(t, testService(t, identity.Deps{Store: sqlstore.New(db), Sealer: testSealer(t)}), nil)
	ctx := context.Background()
	org := rootOrg(t, w.svc)
	num1, num2, num3 := residentID("11010519700101001"), residentID("11010519700101002"), residentID("11010519700101003")
	a, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "doc-a", DisplayName: "A", OrgID: org, IDType: identity.IDTypeResidentID, IDNumber: num1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "doc-b", DisplayName: "B", OrgID: org, IDType: identity.IDTypeResidentID, IDNumber: num2})
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		got, err := w.svc.GetUser(ctx, b.ID)
		if err != nil || got.IDKey != b.IDKey || got.IDNumberMask != b.IDNumberMask || got.IDType != b.IDType || got.FeatureCode != b.FeatureCode {
			t.Fatalf("%s changed the person: %+v %v", what, got, err)
		}
	}
	_, err = w.svc.UpdateUser(ctx, b.ID, identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: strings.ToLower(num1)})
	isIDNumberTaken(t, err, num1, "doc-a")
	unchanged("another's number")
	for _, bad := range []struct {
		up    identity.UserUpdate
		field string
	}{
		{identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: "110105197001010010"}, "id_number"},
		{identity.UserUpdate{Mask: []string{"id_type"}, IDType: identity.IDTypeNone}, "id_type"},
		{identity.UserUpdate{Mask: []string{"id_type"}, IDType: 7}, "id_type"},
	} {
		_, err := w.svc.UpdateUser(ctx, b.ID, bad.up)
		if e, ok := apierr.As(err); !ok || e.Code != apierr.InvalidArgument || e.Meta[apierr.MetaField] != bad.field {
			t.Fatalf("%+v: %v, want INVALID_ARGUMENT on %s", bad.up, err, bad.field)
		}
		unchanged(fmt.Sprintf("%+v", bad.up))
	}
	// corrected (spaces around it dropped): a new key, num2 free again
	up, err := w.svc.UpdateUser(ctx, b.ID, identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: " " + num3 + " "})
	if err != nil || up.IDKey == "" || up.IDKey == b.IDKey || up.IDNumberMask != ulog.MaskIDNumber(num3) || up.FeatureCode == b.FeatureCode {
		t.Fatalf("correction: %+v %v", up, err)
	}
	// the audit record names the change, the number masked only
	var payload []byte
	if err := db.QueryRowContext(ctx, `SELECT payload FROM events_outbox WHERE subject = ? ORDER BY seq DESC LIMIT 1`,
		"uias.audit.identity.user.update").Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var last events.AuditRecord
	if err := json.Unmarshal(payload, &last); err != nil {
		t.Fatal(err)
	}
	if last.Detail["id_number"] != ulog.MaskIDNumber(num3) || last.Detail["feature_code"] != "" ||
		strings.Contains(fmt.Sprint(last), num3) {
		t.Fatalf("user.update audit record %+v", last)
	}
	// e-mail masked, name only named, ID type by name: the audit log is
	// permanent and the auditor's
	if _, err := w.svc.UpdateUser(ctx, b.ID, identity.UserUpdate{Mask: []string{"email", "display_name", "id_type"},
		Email: "bee.secret@example.org", DisplayName: "Bee Secretname", IDType: identity.IDTypePassport}); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT payload FROM events_outbox WHERE subject = ? ORDER BY seq DESC LIMIT 1`,
		"uias.audit.identity.user.update").Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(payload), "bee.secret") || strings.Contains(string(payload), "Secretname") ||
		!strings.Contains(string(payload), `"display_name":"changed"`) || !strings.Contains(string(payload), `"id_type":"passport"`) {
		t.Fatalf("user.update audit record carries personal data: %s", payload)
	}
	if _, err := w.svc.UpdateUser(ctx, b.ID, identity.UserUpdate{Mask: []string{"id_type"}, IDType: identity.IDTypeResidentID}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.UpdateUser(ctx, a.ID, identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: num3}); err == nil {
		t.Fatal("a took b's corrected number")
	}
	if _, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "doc-c", DisplayName: "C", OrgID: org,
		IDType: identity.IDTypeResidentID, IDNumber: num2}); err != nil {
		t.Fatalf("b's old number after the correction: %v", err)
	}
	// a resident ID number's check character is stored in upper case
	withX := residentIDWithX(t)
	lx, err := w.svc.UpdateUser(ctx, b.ID, identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: strings.ToLower(withX)})
	if err != nil || lx.IDNumberMask != ulog.MaskIDNumber(withX) {
		t.Fatalf("lower-case check character: %+v %v", lx, err)
	}
	if up, err = w.svc.UpdateUser(ctx, b.ID, identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: num3}); err != nil {
		t.Fatal(err)
	}
	// the type alone: the same characters as a passport number are another identifier
	pp, err := w.svc.UpdateUser(ctx, b.ID, identity.UserUpdate{Mask: []string{"id_type"}, IDType: identity.IDTypePassport})
	if err != nil || pp.IDType != identity.IDTypePassport || pp.IDKey == up.IDKey || pp.IDKey == "" {
		t.Fatalf("passport: %+v %v", pp, err)
	}
	if _, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "doc-d", DisplayName: "D", OrgID: org,
		IDType: identity.IDTypeResidentID, IDNumber: num3}); err != nil {
		t.Fatalf("num3 as a resident ID after b's became a passport: %v", err)
	}
	// removed
	none, err := w.svc.UpdateUser(ctx, b.ID, identity.UserUpdate{Mask: []string{"id_type", "id_number"}})
	if err != nil || none.IDKey != "" || none.IDNumberMask != "" || none.IDType != identity.IDTypeNone {
		t.Fatalf("removed: %+v %v", none, err)
	}
	got, err := w.svc.GetUser(ctx, b.ID)
	if err != nil || got.IDKey != "" || got.IDNumberMask != "" {
		t.Fatalf("after the removal: %+v %v", got, err)
	}
}

// A person whose number another account already had before ID keys (left
// without one by the start's backfill) can still be updated, and keeps no
// key: an unrelated change does not refuse them.
func TestUpdateOfAnOldDuplicate(t *testing.T) {
	db, sealer := testDB(t), testSealer(t)
	ctx := context.Background()
	shared := identity.DefaultPolicy()
	shared.SharedIDNumbers = true
	off := testService(t, identity.Deps{Store: sqlstore.New(db), Sealer: sealer, Config: identity.Config{Policy: shared}})
	if _, _, err := off.Bootstrap(ctx, "Boot-Strap-Pass1"); err != nil {
		t.Fatal(err)
	}
	org := rootOrg(t, off)
	num := residentID("11010519850202002")
	var ids []string
	for _, l := range []string{"dup-a", "dup-b"} {
		u, err := off.CreateUser(ctx, identity.NewUser{LoginName: l, DisplayName: l, OrgID: org, IDType: identity.IDTypeResidentID, IDNumber: num})
		if err != nil || u.IDKey != "" {
			t.Fatalf("with unique_id_number off: %+v %v", u, err)
		}
		ids = append(ids, u.ID)
	}
	on := testService(t, identity.Deps{Store: sqlstore.New(db), Sealer: sealer})
	r, err := on.BackfillIDKeys(ctx)
	if err != nil || r.Set != 1 || r.Duplicates != 1 {
		t.Fatalf("backfill %+v %v", r, err)
	}
	for _, id := range ids {
		u, err := on.UpdateUser(ctx, id, identity.UserUpdate{Mask: []string{"email"}, Email: "x@example.org"})
		if err != nil {
			t.Fatalf("update of %s: %v", id, err)
		}
		if u.IDKey != "" {
			for _, other := range ids {
				if got, _ := on.GetUser(ctx, other); other != id && got.IDKey != "" {
					t.Fatalf("both duplicates hold a key")
				}
			}
		}
	}
}

// identity.policy.unique_id_number off: several accounts share an ID
// number, and none carries a key.
func TestSharedIDNumbersWhenOff(t *testing.T) {
	shared := identity.DefaultPolicy()
	shared.SharedIDNumbers = true
	svcs, clk := newInstances(t, 1, identity.Config{Policy: shared})
	w := setupOn(t, svcs[0], clk)
	ctx := context.Background()
	org := rootOrg(t, w.svc)
	num := residentID("11010519750505003")
	for _, l := range []string{"role-a", "role-b"} {
		u, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: l, DisplayName: "One Person", OrgID: org,
			IDType: identity.IDTypeResidentID, IDNumber: num})
		if err != nil || u.IDKey != "" {
			t.Fatalf("second account with unique_id_number off: %+v %v", u, err)
		}
	}
	// And the backfill leaves them alone.
	if r, err := w.svc.BackfillIDKeys(ctx); err != nil || r != (identity.IDKeyBackfill{}) {
		t.Fatalf("backfill with the setting off: %+v %v", r, err)
	}
}

// The start's backfill: people stored without ID keys get theirs (in
// batches: more than one); those whose number another has keep none and
// are counted in one warning that holds no number; other centres' people
// (replicas) get no key, only the replica mark, and are not read again.
func TestBackfillIDKeys(t *testing.T) {
	db, sealer := testDB(t), testSealer(t)
	ctx := context.Background()
	shared := identity.DefaultPolicy()
	shared.SharedIDNumbers = true
	off := testService(t, identity.Deps{Store: sqlstore.New(db), Sealer: sealer, Config: identity.Config{Policy: shared}})
	if _, _, err := off.Bootstrap(ctx, "Boot-Strap-Pass1"); err != nil {
		t.Fatal(err)
	}
	root := rootOrg(t, off)
	away, err := off.CreateOrg(ctx, "away", "Away", root)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1203 // more than two batches
	for i := range n {
		num := residentID(fmt.Sprintf("3201021970%07d", i))
		if _, err := off.CreateUser(ctx, identity.NewUser{LoginName: "p" + strconv.Itoa(i), DisplayName: "P", OrgID: root,
			IDType: identity.IDTypeResidentID, IDNumber: num}); err != nil {
			t.Fatal(err)
		}
	}
	dup := residentID("32010219800000007")
	if _, err := off.CreateUser(ctx, identity.NewUser{LoginName: "dup-x", DisplayName: "D", OrgID: root,
		IDType: identity.IDTypeResidentID, IDNumber: strings.ToLower(dup)}); err != nil {
		t.Fatal(err)
	}
	if _, err := off.CreateUser(ctx, identity.NewUser{LoginName: "dup-y", DisplayName: "D", OrgID: root,
		IDType: identity.IDTypeResidentID, IDNumber: dup}); err != nil {
		t.Fatal(err)
	}
	replica, err := off.CreateUser(ctx, identity.NewUser{LoginName: "replica", DisplayName: "R", OrgID: away.ID,
		IDType: identity.IDTypeResidentID, IDNumber: residentID("32010219800000008")})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	homes := &centre.Homes{Self: "l1", Level: 1, Subtrees: map[string]string{away.ID: "l2"}}
	on := testService(t, identity.Deps{Store: sqlstore.New(db), Sealer: sealer, Logger: zap.New(core), Homes: homes})
	on.RunBackfillIDKeys(ctx)
	var nulls, keys int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE id_number_enc <> '' AND id_key IS NULL").Scan(&nulls); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE id_key IS NOT NULL").Scan(&keys); err != nil {
		t.Fatal(err)
	}
	// Of n+2 local people with a number, two share one: n+1 keys; the
	// duplicate keeps none; the replica is marked.
	if keys != n+2 || nulls != 1 {
		t.Fatalf("%d keys, %d people with a number and no key; want %d and 1", keys, nulls, n+2)
	}
	var marked int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE id_key = ?", identity.ReplicaIDKeyPrefix+replica.ID).Scan(&marked); err != nil || marked != 1 {
		t.Fatalf("replica marked %d times (%v)", marked, err)
	}
	warned := logs.FilterMessageSnippet("left without an ID key").All()
	if len(warned) != 1 || warned[0].Level != zapcore.WarnLevel || warned[0].ContextMap()["accounts"] != int64(1) {
		t.Fatalf("warnings %+v", warned)
	}
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + fmt.Sprint(v)
		}
		if strings.Contains(line, dup) || strings.Contains(line, strings.ToLower(dup)) || strings.Contains(line, "3201021970") || strings.Contains(line, "3201021980") {
			t.Fatalf("a log line holds an ID number: %s", line)
		}
	}
	// The people with keys are one account each now: a new account with
	// the backfilled number is refused.
	_, err = on.CreateUser(ctx, identity.NewUser{LoginName: "late", DisplayName: "L", OrgID: root,
		IDType: identity.IDTypeResidentID, IDNumber: residentID("32010219700000005")})
	isIDNumberTaken(t, err, residentID("32010219700000005"), "p5")
	// A second run finds nothing more to do but the duplicate.
	r, err := on.BackfillIDKeys(ctx)
	if err != nil || r.Set != 0 || r.Duplicates != 1 || r.Replicas != 0 {
		t.Fatalf("second backfill %+v %v", r, err)
	}
}

// The import: a row with the ID number of an earlier row of the file is
// the file's duplicate (on its row, naming the first); one with the number
// of a person already there is ID_NUMBER_TAKEN on its row; the rest are
// imported.
func TestImportIDNumberOnce(t *testing.T) {
	iw := newImportWorld(t)
	ctx := context.Background()
	root := iw.root.Code
	there := residentID("44030519800101001")
	if _, err := iw.svc.CreateUser(ctx, identity.NewUser{LoginName: "there", DisplayName: "There", OrgID: iw.root.ID,
		IDType: identity.IDTypeResidentID, IDNumber: there}); err != nil {
		t.Fatal(err)
	}
	inFile := residentID("44030519800101002")
	p := usersXLSX(t, [][]string{
		{"登录名", "姓名", "机构编码", "邮箱", "证件类型", "证件号码", "密码哈希", "应用类型", "应用编码", "应用账号"},
		{"first", "甲", root, "", "身份证", inFile, "", "", "", ""},                         // 2
		{"again", "乙", root, "", "身份证", strings.ToLower(inFile), "", "", "", ""},        // 3 same number as row 2
		{"taken", "丙", root, "", "身份证", there, "", "", "", ""},                          // 4 a person already there
		{"fine", "丁", root, "", "身份证", residentID("44030519800101003"), "", "", "", ""}, // 5
		{"passport", "戊", root, "", "护照", inFile, "", "", "", ""},                       // 6 another ID type
		{"nonum", "己", root, "", "", "", "", "", "", ""},                                // 7
		{"nonum2", "庚", root, "", "", "", "", "", "", ""},                               // 8
	})
	rep := iw.run(t, p, importfile.XLSX, importfile.Users, "ids-1", false)
	sameErrors(t, rep, map[int]string{3: identity.ReasonImportDuplicate, 4: identity.ReasonIDNumberTaken})
	if rep.Written != 5 {
		t.Fatalf("report %+v", rep)
	}
	for _, e := range rep.Errors {
		if e.Field != "id_number" {
			t.Fatalf("row error %+v: want field id_number", e)
		}
		if e.Row == 3 && !strings.Contains(e.Message, "row 2") {
			t.Fatalf("duplicate row error %+v does not name row 2", e)
		}
		if strings.Contains(e.Message, inFile) || strings.Contains(e.Message, there) || strings.Contains(e.Message, "there") {
			t.Fatalf("row error %+v names a number or the other account", e)
		}
	}
	for _, l := range []string{"first", "fine", "passport", "nonum", "nonum2"} {
		if _, err := iw.st.GetUserByLogin(ctx, l); err != nil {
			t.Fatalf("%s not imported: %v", l, err)
		}
	}
	for _, l := range []string{"again", "taken"} {
		if _, err := iw.st.GetUserByLogin(ctx, l); err == nil {
			t.Fatalf("%s imported", l)
		}
	}
}
