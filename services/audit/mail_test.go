package audit_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/mailtest"
	"github.com/uias/uias/services/audit/sqlstore"
)

// reportsAt writes the reports due at now (HTML and XLSX, UTC+8) of an
// empty log into dir.
func reportsAt(t *testing.T, dir string, now time.Time) *audit.Reporter {
	t.Helper()
	db := pstoretest.OpenSQLite(t)
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	r := &audit.Reporter{Store: sqlstore.New(db), Dir: dir, Periods: []audit.Period{audit.Daily, audit.Weekly},
		Formats: []audit.Format{audit.HTML, audit.XLSX}, After: 30 * time.Minute, UTCOffset: 8 * time.Hour,
		Now: func() time.Time { return now }}
	if _, err := r.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// The scheduled reports go by e-mail to the administrators, through a
// real SMTP server with STARTTLS and a password: each report once, its
// files attached as written; reports on disk before mailing was set up
// are not sent except the newest of each kind; a restart sends nothing
// again; removing a report's ".mailed" file sends it again.
func TestReportsMailed(t *testing.T) {
	ctx := context.Background()
	ms := mailtest.Start(t, mailtest.Options{User: "uias-reports", Pass: "s3cret-pw"})
	dir := filepath.Join(t.TempDir(), "reports")
	cst := time.FixedZone("CST", 8*3600)
	now := time.Date(2026, 12, 2, 0, 40, 0, 0, cst) // a Wednesday
	// reports written before mailing is set up: 29 November and the week
	// of 16 November, then 30 November, 1 December and the week of 23
	// November
	reportsAt(t, dir, time.Date(2026, 11, 30, 0, 40, 0, 0, cst))
	r := reportsAt(t, dir, now)
	r.Now = func() time.Time { return now }
	sender := &audit.SMTPSender{Addr: ms.Addr, Security: audit.SMTPStartTLS, User: "uias-reports", Password: "s3cret-pw",
		TLS: &tls.Config{RootCAs: ms.Roots, MinVersion: tls.VersionTLS12}}
	ml := &audit.ReportMailer{Reporter: r, Periods: r.Periods, Formats: r.Formats, From: "uias@example.org",
		To: []string{"auditor@example.org", "admin@example.org"}, Send: sender.Send, Now: func() time.Time { return now }}
	sent, err := ml.SendDue(ctx)
	// only the newest of each kind on disk is sent
	if err != nil || !slices.Equal(sent, []string{"audit-daily-2026-12-01", "audit-weekly-2026-11-23"}) {
		t.Fatalf("sent %v, %v", sent, err)
	}
	got := ms.Messages()
	if len(got) != 2 {
		t.Fatalf("the server took %d messages", len(got))
	}
	m := got[0]
	if !m.TLS || m.From != "uias@example.org" || !slices.Equal(m.To, []string{"auditor@example.org", "admin@example.org"}) {
		t.Fatalf("envelope: tls %v, from %q, to %v", m.TLS, m.From, m.To)
	}
	h, subject, files := mailtest.Parse(t, m.Data)
	if subject != "UIAS audit report, daily, 2026-12-01" || h.Get("From") != "uias@example.org" ||
		h.Get("To") != "auditor@example.org, admin@example.org" || h.Get("Message-Id") == "" {
		t.Fatalf("header: %v (subject %q)", h, subject)
	}
	if !strings.Contains(string(files[""]), "2026-12-01 00:00 to 2026-12-02 00:00 UTC+08:00") {
		t.Errorf("text: %q", files[""])
	}
	for _, name := range []string{"audit-daily-2026-12-01.html", "audit-daily-2026-12-01.xlsx"} {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(files[name], want) {
			t.Errorf("attachment %s: %d bytes, the file %d", name, len(files[name]), len(want))
		}
	}
	if len(files) != 3 {
		t.Errorf("parts: %d", len(files))
	}
	for _, f := range []string{"audit-daily-2026-12-01.mailed", "audit-weekly-2026-11-23.mailed"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range []string{"audit-daily-2026-11-29.mailed", "audit-daily-2026-11-30.mailed", "audit-weekly-2026-11-16.mailed"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("a report older than the mailing was sent: %s", f)
		}
	}

	// a restart (a new mailer) sends nothing again
	ml2 := *ml
	if sent, err := ml2.SendDue(ctx); err != nil || len(sent) != 0 {
		t.Fatalf("again: %v %v", sent, err)
	}
	// the next day's report is sent; one whose .mailed is removed is sent again
	now = time.Date(2026, 12, 3, 0, 40, 0, 0, cst)
	if _, err := r.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "audit-daily-2026-12-01.mailed")); err != nil {
		t.Fatal(err)
	}
	if sent, err := ml2.SendDue(ctx); err != nil || !slices.Equal(sent, []string{"audit-daily-2026-12-01", "audit-daily-2026-12-02"}) {
		t.Fatalf("next day: %v %v", sent, err)
	}
	if n := len(ms.Messages()); n != 4 {
		t.Fatalf("messages: %d", n)
	}
	// only the kinds and formats chosen
	if err := os.Remove(filepath.Join(dir, "audit-daily-2026-12-02.mailed")); err != nil {
		t.Fatal(err)
	}
	ml2.Periods, ml2.Formats = []audit.Period{audit.Daily}, []audit.Format{audit.XLSX}
	if sent, err := ml2.SendDue(ctx); err != nil || len(sent) != 1 {
		t.Fatalf("XLSX only: %v %v", sent, err)
	}
	if _, _, files := mailtest.Parse(t, ms.Messages()[4].Data); len(files) != 2 || files["audit-daily-2026-12-02.xlsx"] == nil {
		t.Fatalf("XLSX only: %d parts", len(files))
	}
}

// Mailing that fails sends nothing twice and loses nothing: a wrong
// password, a server that is down, a server that does not offer STARTTLS
// or whose certificate is not trusted, a temporary refusal of the
// message. Each is an error saying which step failed (never the
// password); nothing is marked sent, so the next run sends the report,
// in order. A report another replica is sending is left to it unless
// its claim is stale. TLS from the first byte (SMTPS) works too.
func TestReportMailFailures(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "reports")
	cst := time.FixedZone("CST", 8*3600)
	now := time.Date(2026, 12, 2, 0, 40, 0, 0, cst)
	r := reportsAt(t, dir, now)
	r.Periods = []audit.Period{audit.Daily}
	ms := mailtest.Start(t, mailtest.Options{User: "uias-reports", Pass: "s3cret-pw"})
	trust := &tls.Config{RootCAs: ms.Roots, MinVersion: tls.VersionTLS12}
	mailer := func(s *audit.SMTPSender) *audit.ReportMailer {
		return &audit.ReportMailer{Reporter: r, Periods: r.Periods, Formats: r.Formats, From: "uias@example.org",
			To: []string{"auditor@example.org"}, Send: s.Send, Now: func() time.Time { return now }}
	}
	notMarked := func() {
		t.Helper()
		for _, f := range []string{"audit-daily-2026-12-01.mailed", "audit-daily-2026-12-01.mail-claim"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				t.Fatalf("%s left behind", f)
			}
		}
	}
	fails := func(s *audit.SMTPSender, want ...string) {
		t.Helper()
		sent, err := mailer(s).SendDue(ctx)
		if err == nil || len(sent) != 0 {
			t.Fatalf("sent %v, %v", sent, err)
		}
		t.Log(err)
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "wrong-pw") {
			t.Errorf("error %q has the password", err)
		}
		notMarked()
	}
	fails(&audit.SMTPSender{Addr: ms.Addr, User: "uias-reports", Password: "wrong-pw", TLS: trust}, "audit-daily-2026-12-01", "AUTH", "535")
	fails(&audit.SMTPSender{Addr: ms.Addr, User: "uias-reports", Password: "s3cret-pw"}, "STARTTLS", "certificate")
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := down.Addr().String()
	_ = down.Close()
	fails(&audit.SMTPSender{Addr: downAddr, TLS: trust}, "mail server "+downAddr, "refused")
	plain := mailtest.Start(t, mailtest.Options{NoTLS: true})
	fails(&audit.SMTPSender{Addr: plain.Addr}, "does not offer STARTTLS", "nothing sent in clear")
	if len(plain.Messages()) != 0 {
		t.Fatal("a report went in clear")
	}
	ms.FailData(1)
	good := &audit.SMTPSender{Addr: ms.Addr, User: "uias-reports", Password: "s3cret-pw", TLS: trust}
	fails(good, "DATA", "451", "mailbox busy")
	if len(ms.Messages()) != 0 {
		t.Fatal("a refused message was kept")
	}

	// another replica is sending it: left alone; its claim gone stale: taken over
	claim := filepath.Join(dir, "audit-daily-2026-12-01.mail-claim")
	if err := os.WriteFile(claim, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if sent, err := mailer(good).SendDue(ctx); err != nil || len(sent) != 0 {
		t.Fatalf("claimed elsewhere: %v %v", sent, err)
	}
	old := time.Now().Add(-11 * time.Minute)
	if err := os.Chtimes(claim, old, old); err != nil {
		t.Fatal(err)
	}
	now = time.Now() // the claims' clock is the files'
	if sent, err := mailer(good).SendDue(ctx); err != nil || !slices.Equal(sent, []string{"audit-daily-2026-12-01"}) {
		t.Fatalf("stale claim: %v %v", sent, err)
	}
	if len(ms.Messages()) != 1 {
		t.Fatalf("messages: %d", len(ms.Messages()))
	}

	// SMTPS, no password: the server on a trusted network
	tlsOnly := mailtest.Start(t, mailtest.Options{ImplicitTLS: true})
	if err := os.Remove(filepath.Join(dir, "audit-daily-2026-12-01.mailed")); err != nil {
		t.Fatal(err)
	}
	s := &audit.SMTPSender{Addr: tlsOnly.Addr, Security: audit.SMTPTLS, TLS: &tls.Config{RootCAs: tlsOnly.Roots}}
	if sent, err := mailer(s).SendDue(ctx); err != nil || len(sent) != 1 || len(tlsOnly.Messages()) != 1 || !tlsOnly.Messages()[0].TLS {
		t.Fatalf("SMTPS: %v %v", sent, err)
	}
	// none: a password is never sent in clear
	if err := os.Remove(filepath.Join(dir, "audit-daily-2026-12-01.mailed")); err != nil {
		t.Fatal(err)
	}
	fails(&audit.SMTPSender{Addr: plain.Addr, Security: audit.SMTPNone, User: "u", Password: "wrong-pw"}, "over TLS only")
	if sent, err := mailer(&audit.SMTPSender{Addr: plain.Addr, Security: audit.SMTPNone}).SendDue(ctx); err != nil || len(sent) != 1 {
		t.Fatalf("none: %v %v", sent, err)
	}
}

// Two replicas sharing the directory: a report the other replica sent
// while this one was sending an older one is not sent again; a report the
// mail server refuses for good (554) is marked ".mail-failed", said, and
// the later ones go on (deleting the mark sends it again).
func TestReportMailAcrossReplicasAndRejections(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "reports")
	cst := time.FixedZone("CST", 8*3600)
	r := reportsAt(t, dir, time.Date(2026, 12, 1, 0, 40, 0, 0, cst)) // 30 November
	r.Periods = []audit.Period{audit.Daily}
	ms := mailtest.Start(t, mailtest.Options{})
	s := &audit.SMTPSender{Addr: ms.Addr, TLS: &tls.Config{RootCAs: ms.Roots, MinVersion: tls.VersionTLS12}}
	now := time.Date(2026, 12, 3, 0, 40, 0, 0, cst)
	r.Now = func() time.Time { return now }
	mailer := func(send func(context.Context, string, []string, []byte) error) *audit.ReportMailer {
		return &audit.ReportMailer{Reporter: r, Periods: r.Periods, Formats: r.Formats, From: "uias@example.org",
			To: []string{"auditor@example.org"}, Send: send, Now: func() time.Time { return now }}
	}
	// mailing set up with 30 November on disk, then 1 and 2 December written
	if sent, err := mailer(s.Send).SendDue(ctx); err != nil || len(sent) != 1 {
		t.Fatalf("set-up: %v %v", sent, err)
	}
	if _, err := r.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	// replica A sends 1 December; meanwhile replica B sent 2 December
	first := true
	a := mailer(func(ctx context.Context, from string, to []string, msg []byte) error {
		if first {
			first = false
			if sent, err := mailer(s.Send).SendDue(ctx); err != nil || len(sent) != 0 {
				t.Errorf("replica B while A holds 1 December's claim: %v %v", sent, err) // it waits, in order
			}
			if err := os.WriteFile(filepath.Join(dir, "audit-daily-2026-12-02.mailed"), []byte("sent by B\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return s.Send(ctx, from, to, msg)
	})
	if sent, err := a.SendDue(ctx); err != nil || !slices.Equal(sent, []string{"audit-daily-2026-12-01"}) {
		t.Fatalf("replica A: %v %v", sent, err)
	}
	if n := len(ms.Messages()); n != 2 {
		t.Fatalf("messages: %d, want 2 (2 December not sent twice)", n)
	}
	// a permanent refusal: marked and passed over
	for _, d := range []string{"2026-12-01", "2026-12-02"} {
		if err := os.Remove(filepath.Join(dir, "audit-daily-"+d+".mailed")); err != nil {
			t.Fatal(err)
		}
	}
	ms.RejectData(1)
	sent, err := mailer(s.Send).SendDue(ctx)
	if err == nil || !strings.Contains(err.Error(), "554") || !strings.Contains(err.Error(), "refused for good") ||
		!strings.Contains(err.Error(), "audit-daily-2026-12-01.mail-failed") || !slices.Equal(sent, []string{"audit-daily-2026-12-02"}) {
		t.Fatalf("a rejected report: %v %v", sent, err)
	}
	if sent, err := mailer(s.Send).SendDue(ctx); err != nil || len(sent) != 0 {
		t.Fatalf("the rejected report is not retried: %v %v", sent, err)
	}
	if err := os.Remove(filepath.Join(dir, "audit-daily-2026-12-01.mail-failed")); err != nil {
		t.Fatal(err)
	}
	if sent, err := mailer(s.Send).SendDue(ctx); err != nil || !slices.Equal(sent, []string{"audit-daily-2026-12-01"}) {
		t.Fatalf("after the mark is deleted: %v %v", sent, err)
	}
}
