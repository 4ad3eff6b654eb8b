package component

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/storetest"
)

var def = config.SectionDef{Name: Name, New: func() config.Section { return Defaults() }}

func fields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*config.FieldError); ok { //nolint:errorlint // walks the join tree node by node
			out = append(out, fe.Field)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

func TestDefaults(t *testing.T) {
	c := config.Default(def)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := Settings(&c)
	if s.Origin != "uias.audit" || s.Batch != 2000 || s.BatchWait != 500*time.Millisecond || s.CheckpointEvery != 1000 ||
		s.CheckpointInterval != 10*time.Second || s.StreamMaxAge != 7*24*time.Hour || s.KeyFileIn(&c) != filepath.Join("data", "keyring.json") {
		t.Fatalf("defaults: %+v", s)
	}
	r := s.Reports
	if s.PDFFont != "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf" || s.PDFLatinFont != "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf" || r.Dir != "" || !slices.Equal(r.Schedule, []string{"daily", "weekly"}) ||
		!slices.Equal(r.Formats, []string{"pdf", "html"}) || r.After != 30*time.Minute || r.UTCOffset != 0 {
		t.Fatalf("report defaults: %q %+v", s.PDFFont, r)
	}
}

func TestReportSettingsFromEnvironment(t *testing.T) {
	env := map[string]string{"UIAS_AUDIT_PDF_FONT": "/opt/fonts/cjk.ttf", "UIAS_AUDIT_PDF_LATIN_FONT": "/opt/fonts/latin.ttf", "UIAS_AUDIT_REPORTS_DIR": "/var/lib/uias/reports",
		"UIAS_AUDIT_REPORTS_SCHEDULE": "weekly", "UIAS_AUDIT_REPORTS_FORMATS": "xlsx,pdf", "UIAS_AUDIT_REPORTS_AFTER": "2h",
		"UIAS_AUDIT_REPORTS_UTC_OFFSET": "8h"}
	c, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, nil, def)
	if err != nil {
		t.Fatal(err)
	}
	s := Settings(&c)
	r := s.Reports
	if s.PDFFont != "/opt/fonts/cjk.ttf" || s.PDFLatinFont != "/opt/fonts/latin.ttf" || r.Dir != "/var/lib/uias/reports" || !slices.Equal(r.Schedule, []string{"weekly"}) ||
		!slices.Equal(r.Formats, []string{"xlsx", "pdf"}) || r.After != 2*time.Hour || r.UTCOffset != 8*time.Hour {
		t.Fatalf("from the environment: %q %+v", s.PDFFont, r)
	}
	// PDF reports without the font: the start stops, naming the setting
	_, err = r.reporter(nil, audit.Exporter{PDFFont: filepath.Join(t.TempDir(), "none.ttf")})
	if err == nil || !strings.Contains(err.Error(), "audit.pdf_font") || !strings.Contains(err.Error(), "fonts-droid-fallback") {
		t.Fatalf("reports as PDF without the font: %v", err)
	}
	r.Formats = []string{"xlsx"}
	if rep, err := r.reporter(nil, audit.Exporter{PDFFont: "/none.ttf"}); err != nil || rep == nil || rep.Dir != "/var/lib/uias/reports" {
		t.Fatalf("reports without PDF: %v %v", rep, err)
	}
	r.Dir = ""
	if rep, err := r.reporter(nil, audit.Exporter{}); err != nil || rep != nil {
		t.Fatalf("no directory, no reports: %v %v", rep, err)
	}
}

// mailOK sets the reports mailed, rightly.
func mailOK(c *Config) {
	c.Reports.Dir = "/var/lib/uias/reports"
	c.Reports.Mail = ReportMailConfig{To: []string{"Security Auditor <auditor@example.org>"}, From: "uias@example.org",
		SMTPAddr: "mail.example.org:587", SMTPUser: "uias", SMTPPassword: "pw"}
}

func TestReportMailSettings(t *testing.T) {
	env := map[string]string{"UIAS_AUDIT_REPORTS_DIR": "/var/lib/uias/reports", "UIAS_AUDIT_REPORTS_FORMATS": "html,xlsx",
		"UIAS_AUDIT_REPORTS_MAIL_TO": "auditor@example.org,Admin <admin@example.org>", "UIAS_AUDIT_REPORTS_MAIL_FROM": "UIAS <uias@example.org>",
		"UIAS_AUDIT_REPORTS_SMTP_ADDR": "mail.example.org:465", "UIAS_AUDIT_REPORTS_SMTP_SECURITY": "tls",
		"UIAS_AUDIT_REPORTS_SMTP_USER": "uias", "UIAS_AUDIT_REPORTS_SMTP_PASSWORD": "pw", "UIAS_AUDIT_REPORTS_MAIL_SCHEDULE": "weekly",
		"UIAS_AUDIT_REPORTS_MAIL_FORMATS": "xlsx"}
	c, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, nil, def)
	if err != nil {
		t.Fatal(err)
	}
	r := Settings(&c).Reports
	rep, err := r.reporter(nil, audit.Exporter{})
	if err != nil {
		t.Fatal(err)
	}
	ml, err := r.Mail.mailer(rep)
	if err != nil || ml == nil {
		t.Fatalf("mailer: %v", err)
	}
	if ml.From != "uias@example.org" || !slices.Equal(ml.To, []string{"auditor@example.org", "admin@example.org"}) ||
		!slices.Equal(ml.Periods, []audit.Period{audit.Weekly}) || !slices.Equal(ml.Formats, []audit.Format{audit.XLSX}) {
		t.Fatalf("mailer: %+v", ml)
	}
	// the password is not a YAML key
	if r.Mail.SMTPPassword != "pw" {
		t.Fatal("password from the environment")
	}
	// the mail server's CA: a file that is not one stops the start
	r.Mail.SMTPCAFile = filepath.Join(t.TempDir(), "ca.pem")
	if _, err := r.Mail.mailer(rep); err == nil || !strings.Contains(err.Error(), "smtp_ca_file") {
		t.Fatalf("missing CA file: %v", err)
	}
	// no addresses, no mailer
	r.Mail.To = nil
	if ml, err := r.Mail.mailer(rep); ml != nil || err != nil {
		t.Fatalf("no addresses: %v %v", ml, err)
	}
}

func TestEnvironment(t *testing.T) {
	env := map[string]string{"UIAS_AUDIT_ORIGIN": "centre-2.example/audit", "UIAS_AUDIT_BATCH": "50",
		"UIAS_AUDIT_CHECKPOINT_EVERY": "7", "UIAS_AUDIT_CHECKPOINT_INTERVAL": "3s", "UIAS_AUDIT_STREAM_MAX_AGE": "720h",
		"UIAS_KEY_FILE": "/run/secrets/ring", "UIAS_KEY_FILE_ALLOW_OPEN_MODE": "true", "UIAS_KEYRING": "{}", "UIAS_AUDIT_BATCH_WAIT": "1s",
		"UIAS_AUDIT_BACKUP_REMINDER": "168h", "UIAS_AUDIT_MIN_REMOVAL_AGE": "8760h"}
	c, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, nil, def)
	if err != nil {
		t.Fatal(err)
	}
	s := Settings(&c)
	if s.Origin != "centre-2.example/audit" || s.Batch != 50 || s.CheckpointEvery != 7 || s.CheckpointInterval != 3*time.Second ||
		s.StreamMaxAge != 720*time.Hour || s.KeyFileIn(&c) != "/run/secrets/ring" || s.KeyRing != "{}" || s.BatchWait != time.Second || !s.KeyFileAllowOpenMode ||
		s.BackupReminder != 168*time.Hour || s.MinRemovalAge != 8760*time.Hour {
		t.Fatalf("from the environment: %+v", s)
	}
}

func TestValidateEachProblem(t *testing.T) {
	for _, tc := range []struct {
		mod   func(c *Config)
		field string
	}{
		{func(c *Config) { c.Origin = "has space" }, "audit.origin"},
		{func(c *Config) { c.Origin = "" }, "audit.origin"},
		{func(c *Config) { c.Batch = 0 }, "audit.batch"},
		{func(c *Config) { c.Batch = 5001 }, "audit.batch"},
		{func(c *Config) { c.BatchWait = 0 }, "audit.batch_wait"},
		{func(c *Config) { c.CheckpointEvery = 0 }, "audit.checkpoint_every"},
		{func(c *Config) { c.CheckpointInterval = time.Millisecond }, "audit.checkpoint_interval"},
		{func(c *Config) { c.StreamMaxAge = 24 * time.Hour }, "audit.stream_max_age"},
		{func(c *Config) { c.BackupReminder = time.Minute }, "audit.backup_reminder"},
		{func(c *Config) { c.BackupReminder = -time.Hour }, "audit.backup_reminder"},
		{func(c *Config) { c.BackupReminder = 20 * 365 * 24 * time.Hour }, "audit.backup_reminder"},
		{func(c *Config) { c.MinRemovalAge = -time.Hour }, "audit.min_removal_age"},
		// records would leave younger than the auditor may remove them
		{func(c *Config) { c.Retention = 30 * 24 * time.Hour }, "audit.retention"},
		{func(c *Config) { c.PDFFont = "" }, "audit.pdf_font"},
		{func(c *Config) { c.Analytics.Sites = []string{"10.20.0.0/16 Shenzhen"} }, "audit.analytics.sites"},
		{func(c *Config) { c.Analytics.Sites = []string{"10.0.0.0/8 1 2 A", "10.0.0.0/8 3 4 B"} }, "audit.analytics.sites"},
		{func(c *Config) { c.PDFLatinFont = "" }, "audit.pdf_latin_font"},
		{func(c *Config) { c.Reports.Schedule = []string{"hourly"} }, "audit.reports.schedule"},
		{func(c *Config) { c.Reports.Schedule = nil }, "audit.reports.schedule"},
		{func(c *Config) { c.Reports.Formats = []string{"pdf", "csv"} }, "audit.reports.formats"},
		{func(c *Config) { c.Reports.After = -time.Minute }, "audit.reports.after"},
		{func(c *Config) { c.Reports.UTCOffset = 15 * time.Hour }, "audit.reports.utc_offset"},
		{func(c *Config) { c.Reports.UTCOffset = 30 * time.Second }, "audit.reports.utc_offset"},
		// mailing the reports: each mistake alone (mailOK is right)
		{func(c *Config) { mailOK(c); c.Reports.Dir = "" }, "audit.reports.mail.to"},
		{func(c *Config) { mailOK(c); c.Reports.Mail.To = []string{"auditor"} }, "audit.reports.mail.to"},
		{func(c *Config) { mailOK(c); c.Reports.Mail.To = nil }, "audit.reports.mail.to"},
		{func(c *Config) { mailOK(c); c.Reports.Mail.From = "" }, "audit.reports.mail.from"},
		{func(c *Config) { mailOK(c); c.Reports.Mail.From = "uias@example.org\r\nBcc: x@example.org" }, "audit.reports.mail.from"},
		{func(c *Config) { mailOK(c); c.Reports.Mail.SMTPAddr = "mail.example.org" }, "audit.reports.mail.smtp_addr"},
		{func(c *Config) { mailOK(c); c.Reports.Mail.SMTPSecurity = "ssl" }, "audit.reports.mail.smtp_security"},
		{func(c *Config) { mailOK(c); c.Reports.Mail.SMTPSecurity = "none" }, "audit.reports.mail.smtp_security"},
		{func(c *Config) { mailOK(c); c.Reports.Mail.SMTPPassword = "" }, "audit.reports.mail.smtp_user"},
		{func(c *Config) { mailOK(c); c.Reports.Mail.Schedule = []string{"monthly"} }, "audit.reports.mail.schedule"},
		{func(c *Config) { mailOK(c); c.Reports.Mail.Formats = []string{"xlsx"} }, "audit.reports.mail.formats"},
	} {
		c := config.Default(def)
		tc.mod(Settings(&c))
		if got := fields(c.Validate()); !slices.Equal(got, []string{tc.field}) {
			t.Errorf("%s: fields %v", tc.field, got)
		}
	}
	c := config.Default(def)
	Settings(&c).StreamMaxAge = 0 // leave the stream as it is
	if Settings(&c).BackupReminder != DefaultBackupReminder {
		t.Errorf("backup_reminder default %s", Settings(&c).BackupReminder)
	}
	Settings(&c).BackupReminder = 0 // no reminder
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if Settings(&c).MinRemovalAge != 4380*time.Hour {
		t.Errorf("min_removal_age default %s", Settings(&c).MinRemovalAge)
	}
	// a shorter retention with the floor lowered as far
	Settings(&c).MinRemovalAge, Settings(&c).Retention = 0, 24*time.Hour
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestPeerSettings: audit.peers names each level-2 centre whose log level 1
// receives; a bad centre name, origin, a repeated origin (or this centre's
// own) and a key that is no verifier key are refused naming the field.
func TestPeerSettings(t *testing.T) {
	good := PeerConfig{Centre: "l2a", Origin: "l2a.audit", VerifierKeys: storetest.Signer(t).VerifierKeys()}
	c := config.Default(def)
	s := Settings(&c)
	s.Origin, s.Peers = "l1.audit", []PeerConfig{good}
	if err := c.Validate(); err != nil {
		t.Fatalf("a good peer: %v", err)
	}
	s.Peers = []PeerConfig{good, {Centre: "L2B!", Origin: "l2a.audit"}, {Centre: "l2c", Origin: "l1.audit"},
		{Centre: "l2d", Origin: "bad origin"}, {Centre: "l2e", Origin: "l2e.audit", VerifierKeys: []string{"not a key"}}}
	err := c.Validate()
	want := []string{"audit.peers[1].centre", "audit.peers[1].origin", "audit.peers[2].origin", "audit.peers[3].origin",
		"audit.peers[4].verifier_keys"}
	if got := fields(err); !slices.Equal(got, want) {
		t.Fatalf("bad peers: fields %v, want %v (%v)", got, want, err)
	}
	if !strings.Contains(err.Error(), "own origin or another peer's") {
		t.Fatalf("message: %v", err)
	}
	// sec28b L5, M3: a centre named twice (one stream, one consumer: each
	// receiver would ack the other's messages), bounds too small
	s.Peers = []PeerConfig{good, {Centre: "l2a", Origin: "l2x.audit"}, {Centre: "l2b", Origin: "l2b.audit", MaxBytes: 1000},
		{Centre: "l2c", Origin: "l2c.audit", MaxAge: time.Minute, SkipGapAfter: time.Second}}
	err = c.Validate()
	want = []string{"audit.peers[1].centre", "audit.peers[2].max_bytes", "audit.peers[3].max_age", "audit.peers[3].skip_gap_after"}
	if got := fields(err); !slices.Equal(got, want) {
		t.Fatalf("repeated centre, bounds: fields %v, want %v (%v)", got, want, err)
	}
	s.Peers = []PeerConfig{good, {Centre: "l2b", Origin: "l2b.audit", MaxBytes: 10 << 20, MaxAge: 2 * time.Hour, SkipGapAfter: time.Minute}}
	if err := c.Validate(); err != nil {
		t.Fatalf("good bounds: %v", err)
	}
}
