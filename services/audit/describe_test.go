package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

// Each record says what it records in a sentence, in English or Chinese
// (the maritime design's 操作描述, 004 2.1.7: 序号、管理员名称、操作类别、操作日期、
// 操作描述): who did what to whom and how it ended.
func TestDescribe(t *testing.T) {
	cases := []struct {
		rec            audit.Record
		actor, subject string
		wantEN, wantZH string
	}{
		{rec: audit.Record{API: "user.create", Actor: "user:a1", Subject: "user:b2", Result: "success", Reason: "OK",
			Detail: map[string]string{"login": "bob"}}, actor: "ada (Ada Li)",
			wantEN: "Create person bob (user:b2) by ada (Ada Li): success",
			wantZH: "ada (Ada Li) 创建用户 bob (user:b2)：成功"},
		{rec: audit.Record{API: "user.update", Actor: "user:a1", Subject: "user:b2", Result: "success", Reason: "OK",
			Detail: map[string]string{"fields": "email,phone"}}, actor: "ada (Ada Li)", subject: "bob (Bob Wu)",
			wantEN: "Update person bob (Bob Wu) (fields: email,phone) by ada (Ada Li): success",
			wantZH: "ada (Ada Li) 修改用户 bob (Bob Wu)（字段：email,phone）：成功"},
		{rec: audit.Record{API: "authenticate", AppID: "oa", Subject: "user:b2", Result: "failure", Reason: "BAD_CREDENTIALS"},
			subject: "bob (Bob Wu)",
			wantEN:  "Authenticate a person for an application bob (Bob Wu) by application oa: failed (BAD_CREDENTIALS)",
			wantZH:  "应用 oa 应用认证用户身份 bob (Bob Wu)：失败（BAD_CREDENTIALS）"},
		{rec: audit.Record{API: "role.delete", Actor: "user:a1", Subject: "role:R_CLERK", Result: "denied", Reason: "PERMISSION_DENIED"},
			wantEN: "Delete role role:R_CLERK by user:a1: refused (PERMISSION_DENIED)",
			wantZH: "user:a1 删除角色 role:R_CLERK：拒绝（PERMISSION_DENIED）"},
		{rec: audit.Record{API: "admin.login", Actor: "user:a1", Subject: "user:a1", Result: "success", Reason: "OK"},
			actor: "ada (Ada Li)", subject: "ada (Ada Li)",
			wantEN: "Administrator sign-in by ada (Ada Li): success", wantZH: "ada (Ada Li) 管理员登录：成功"},
		// an administrator's read is named by its method
		{rec: audit.Record{API: "uias.audit.v1.AuditQueryService/QueryRecords", Actor: "user:a1", Subject: "audit:records",
			Result: "success", Reason: "OK"}, actor: "ada (Ada Li)",
			wantEN: "Query records audit:records by ada (Ada Li): success",
			wantZH: "ada (Ada Li) 调用接口 QueryRecords audit:records：成功"},
		// an API with no words of its own is named as it is
		{rec: audit.Record{API: "frobnicate.widely", Actor: "app:x", Result: "success", Reason: "OK"},
			wantEN: "Call frobnicate.widely by app:x: success", wantZH: "app:x 调用 frobnicate.widely：成功"},
	}
	for _, c := range cases {
		if got := audit.Describe(&c.rec, c.actor, c.subject, audit.English); got != c.wantEN {
			t.Errorf("%s in English: %q, want %q", c.rec.API, got, c.wantEN)
		}
		if got := audit.Describe(&c.rec, c.actor, c.subject, audit.Chinese); got != c.wantZH {
			t.Errorf("%s in Chinese: %q, want %q", c.rec.API, got, c.wantZH)
		}
	}
	for _, s := range []string{"", "en", "zh-CN"} {
		if _, ok := audit.ParseLang(s); !ok {
			t.Errorf("ParseLang(%q) refused", s)
		}
	}
	for _, s := range []string{"zh", "fr", "EN"} {
		if _, ok := audit.ParseLang(s); ok {
			t.Errorf("ParseLang(%q) taken", s)
		}
	}
}

// Every API the components audit today has words of its own in both
// languages (a new one falls back to "Call <api>": this list says which
// to give words).
func TestDescribeKnowsTheAPIs(t *testing.T) {
	apis := []string{"authenticate", "authenticate.finger_bypass", "change_password", "caller.denied", "admin.login", "admin.logout",
		"admin.refused", "admin.auth", "admin.appointed", "admin.tokens_revoked", "sso.login", "sso.password.change.verify",
		"account.lockout", "account.associate", "user.create", "user.update", "user.delete", "user.locked", "user.unlocked",
		"user.status_changed", "user.set_password", "user.reset_password", "user.clear_password", "user.certificate.bind", "user.certificate.unbind",
		"user.totp.enrol", "user.totp.remove", "user.totp.reset", "org.create", "org.update", "org.move", "org.delete",
		"org.set_status", "org.resend", "group.create", "group.update", "group.delete", "app.create", "app.update", "app.delete",
		"app.rotate_secret", "app.forget", "link.create", "link.delete", "link.associate", "finger.enroll", "finger.delete",
		"finger.bypass", "keys.rotate", "keys.reencrypt", "password.wrap", "directory.get_person", "directory.list_people",
		"directory.list_orgs", "session.create", "session.end", "ticket.issue", "ticket.validate", "ticket.proxy",
		"ticket.pgt.revoke", "logout.delivery", "oidc.token", "oidc.refresh", "oidc.revoke", "oidc.userinfo",
		"oidc.code.replayed", "service.create", "service.update", "service.delete", "authz.check", "authz.batch_check",
		"authz.explain", "authz.subjects", "authz.sod_breach", "role.create", "role.update", "role.delete", "role.resend", "grant.create",
		"grant.revoke", "grant.appoint", "resource.put", "resource.delete", "exclusion.create", "exclusion.delete",
		"subscription.create", "subscription.update", "subscription.delete", "provision.dead_letter", "provision.batch",
		"provision.retry", "sync.skipped.resolve", "export", "archive"}
	for _, api := range apis {
		r := audit.Record{API: api, Result: "success"}
		for _, l := range []audit.Lang{audit.English, audit.Chinese} {
			if d := audit.Describe(&r, "", "", l); strings.Contains(d, api) {
				t.Errorf("%s has no words (%v): %q", api, l, d)
			}
		}
	}
}

// An export in Chinese names its columns as the maritime design does
// (序号 … 操作描述); in English the columns keep their keys. JSON lines
// keep English keys and carry the description in the language asked.
func TestExportDescriptionColumn(t *testing.T) {
	ctx := context.Background()
	st, l := newLog(t)
	recs := storetest.Records("ds", 2)
	recs[0].API, recs[0].Actor, recs[0].Subject, recs[0].Result = "user.create", "user:u1", "user:u2", "success"
	recs[1].API, recs[1].Actor, recs[1].Subject, recs[1].Result, recs[1].Reason = "authenticate", "app:oa", "user:u2", "failure", "BAD_CREDENTIALS"
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	n := &names{byID: map[string]string{"u1": "ada (Ada Li)", "u2": "bob (Bob Wu)"}}
	export := func(lang audit.Lang, f audit.Format) []byte {
		var b bytes.Buffer
		if _, err := (audit.Exporter{Names: n, Lang: lang}).Records(ctx, st, audit.Scope{All: true}, audit.Query{}, 0, f, &b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	readCSV := func(b []byte) [][]string {
		rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\ufeff")))).ReadAll()
		if err != nil || len(rows) != 3 {
			t.Fatalf("csv: %v %v", rows, err)
		}
		return rows
	}
	en := readCSV(export(audit.English, audit.CSV))
	// description: after actor_name, before origin (the last: rr29 C3)
	if d := slices.Index(en[0], "description"); d != len(en[0])-2 || en[0][d+1] != "origin" || en[1][d] != "Authenticate a person for an application bob (Bob Wu) by app:oa: failed (BAD_CREDENTIALS)" ||
		en[2][d] != "Create person bob (Bob Wu) by ada (Ada Li): success" {
		t.Fatalf("English export:\n%v", en)
	}
	zh := readCSV(export(audit.Chinese, audit.CSV))
	for _, col := range []string{"序号", "管理员名称", "操作类别", "操作日期", "操作描述"} {
		if !slices.Contains(zh[0], col) {
			t.Errorf("Chinese header lacks %s: %v", col, zh[0])
		}
	}
	zd := slices.Index(zh[0], "操作描述")
	if got := zh[2][zd]; zd != len(zh[0])-2 || got != "ada (Ada Li) 创建用户 bob (Bob Wu)：成功" {
		t.Errorf("Chinese description %q", got)
	}
	// XLSX: the same columns
	x, err := excelize.OpenReader(bytes.NewReader(export(audit.Chinese, audit.XLSX)))
	if err != nil {
		t.Fatal(err)
	}
	xrows, err := x.GetRows("Records")
	if err != nil || len(xrows) != 3 || xrows[0][zd] != "操作描述" || xrows[2][zd] != zh[2][zd] {
		t.Fatalf("xlsx rows %v %v", xrows, err)
	}
	// HTML: title and header in Chinese
	if h := string(export(audit.Chinese, audit.HTML)); !strings.Contains(h, "审计日志") || !strings.Contains(h, "操作描述") ||
		!strings.Contains(h, "创建用户") {
		t.Errorf("Chinese HTML lacks its title, column or description:\n%s", h)
	}
	// JSON lines: English keys, the description in the language asked
	lines := strings.Split(strings.TrimSpace(string(export(audit.Chinese, audit.JSONL))), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil || m["description"] != "ada (Ada Li) 创建用户 bob (Bob Wu)：成功" || m["seq"] == nil {
		t.Fatalf("JSON line %v %v", m, err)
	}
}

// newLog is an audit log on a fresh SQLite store.
func newLog(t *testing.T) (*sqlstore.Store, *audit.Log) {
	t.Helper()
	db := pstoretest.OpenSQLite(t)
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	st := sqlstore.New(db)
	return st, audit.NewLog(st, storetest.Signer(t), audit.LogOptions{})
}
