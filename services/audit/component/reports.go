package component

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/services/audit"
)

// ReportsConfig is the scheduled reports' part of the audit section (YAML
// key "audit.reports"): reports of the past day and week written as files
// to Dir.
type ReportsConfig struct {
	// Dir is where the reports are written (created 0700, files 0600).
	// Empty (the default) writes none.
	Dir string `yaml:"dir"`
	// Schedule: "daily", "weekly" or both (default both). A daily report
	// covers a day, a weekly one Monday to Sunday, in UTCOffset.
	Schedule []string `yaml:"schedule"`
	// Formats: "pdf", "html", "xlsx" (default pdf and html).
	Formats []string `yaml:"formats"`
	// After is how long after the end of a day (or week) its report is
	// written (default 30m: the records of its last minutes are in).
	After time.Duration `yaml:"after"`
	// UTCOffset is the time zone of days and weeks (default 0, UTC; "8h"
	// for China Standard Time).
	UTCOffset time.Duration `yaml:"utc_offset"`
	// Mail sends the reports by e-mail once written (YAML key
	// "audit.reports.mail").
	Mail ReportMailConfig `yaml:"mail"`
}

// ReportMailConfig sends the scheduled reports to administrators'
// mailboxes: empty To (the default) sends none.
type ReportMailConfig struct {
	// To is the addresses the reports go to.
	To []string `yaml:"to"`
	// From is the sender's address.
	From string `yaml:"from"`
	// SMTPAddr is the mail server, host:port.
	SMTPAddr string `yaml:"smtp_addr"`
	// SMTPSecurity: starttls (default; a server without it is refused),
	// tls (SMTPS, port 465) or none (no password then).
	SMTPSecurity string `yaml:"smtp_security"`
	// SMTPCAFile is the PEM CA of the mail server's certificate (default:
	// the system's roots).
	SMTPCAFile string `yaml:"smtp_ca_file"`
	// SMTPUser logs in with AUTH PLAIN; its password is
	// UIAS_AUDIT_REPORTS_SMTP_PASSWORD (environment only).
	SMTPUser     string `yaml:"smtp_user"`
	SMTPPassword string `yaml:"-"`
	// Schedule and Formats choose the reports sent and the files attached
	// (default: all of reports.schedule and reports.formats).
	Schedule []string `yaml:"schedule"`
	Formats  []string `yaml:"formats"`
}

func defaultReports() ReportsConfig {
	return ReportsConfig{Schedule: []string{"daily", "weekly"}, Formats: []string{"pdf", "html"}, After: 30 * time.Minute}
}

func (r *ReportsConfig) bind(b *config.Binder) {
	b.String(&r.Dir, "UIAS_AUDIT_REPORTS_DIR", "", "")
	b.List(&r.Schedule, "UIAS_AUDIT_REPORTS_SCHEDULE", "", "")
	b.List(&r.Formats, "UIAS_AUDIT_REPORTS_FORMATS", "", "")
	b.Duration(&r.After, "UIAS_AUDIT_REPORTS_AFTER", "", "")
	b.Duration(&r.UTCOffset, "UIAS_AUDIT_REPORTS_UTC_OFFSET", "", "")
	m := &r.Mail
	b.List(&m.To, "UIAS_AUDIT_REPORTS_MAIL_TO", "", "")
	b.String(&m.From, "UIAS_AUDIT_REPORTS_MAIL_FROM", "", "")
	b.String(&m.SMTPAddr, "UIAS_AUDIT_REPORTS_SMTP_ADDR", "", "")
	b.String(&m.SMTPSecurity, "UIAS_AUDIT_REPORTS_SMTP_SECURITY", "", "")
	b.String(&m.SMTPCAFile, "UIAS_AUDIT_REPORTS_SMTP_CA_FILE", "", "")
	b.String(&m.SMTPUser, "UIAS_AUDIT_REPORTS_SMTP_USER", "", "")
	b.Secret(&m.SMTPPassword, "UIAS_AUDIT_REPORTS_SMTP_PASSWORD")
	b.List(&m.Schedule, "UIAS_AUDIT_REPORTS_MAIL_SCHEDULE", "", "")
	b.List(&m.Formats, "UIAS_AUDIT_REPORTS_MAIL_FORMATS", "", "")
}

var (
	reportPeriods = map[string]audit.Period{"daily": audit.Daily, "weekly": audit.Weekly}
	reportFormats = map[string]audit.Format{"pdf": audit.PDF, "html": audit.HTML, "xlsx": audit.XLSX}
)

func (r *ReportsConfig) validate(bad func(field, format string, a ...any)) {
	if len(r.Schedule) == 0 {
		bad("reports.schedule", "must name daily, weekly or both")
	}
	for _, s := range r.Schedule {
		if _, ok := reportPeriods[s]; !ok {
			bad("reports.schedule", "must be daily, weekly or both, got %q", s)
		}
	}
	if len(r.Formats) == 0 {
		bad("reports.formats", "must name pdf, html, xlsx or several")
	}
	for _, f := range r.Formats {
		if _, ok := reportFormats[f]; !ok {
			bad("reports.formats", "must be pdf, html or xlsx (a report has several tables; CSV and JSONL hold one), got %q", f)
		}
	}
	if r.After < 0 || r.After > 24*time.Hour {
		bad("reports.after", "must be between 0 and 24h, got %s", r.After)
	}
	if r.UTCOffset < -12*time.Hour || r.UTCOffset > 14*time.Hour || r.UTCOffset%time.Minute != 0 {
		bad("reports.utc_offset", "must be whole minutes between -12h and 14h, got %s", r.UTCOffset)
	}
	r.Mail.validate(r, bad)
}

// validate checks the mailing of reports r.
func (m *ReportMailConfig) validate(r *ReportsConfig, bad func(field, format string, a ...any)) {
	if len(m.To) == 0 {
		if m.SMTPAddr != "" || m.From != "" {
			bad("reports.mail.to", "names nobody, but reports.mail has a mail server or sender: add the administrators' addresses, or remove the rest")
		}
		return
	}
	if r.Dir == "" {
		bad("reports.mail.to", "needs reports.dir: the reports mailed are the files written there")
	}
	for _, a := range m.To {
		if _, err := bareAddress(a); err != nil {
			bad("reports.mail.to", "%q is not an e-mail address: %v", a, err)
		}
	}
	if _, err := bareAddress(m.From); err != nil {
		bad("reports.mail.from", "must be the sender's e-mail address, got %q: %v", m.From, err)
	}
	if host, port, err := net.SplitHostPort(m.SMTPAddr); err != nil || host == "" || port == "" {
		bad("reports.mail.smtp_addr", "must be the mail server's host:port (e.g. mail.example.org:587), got %q", m.SMTPAddr)
	}
	switch m.SMTPSecurity {
	case "", audit.SMTPStartTLS, audit.SMTPTLS:
	case audit.SMTPNone:
		if m.SMTPUser != "" {
			bad("reports.mail.smtp_security", "none would send the password of smtp_user in clear: use starttls or tls")
		}
	default:
		bad("reports.mail.smtp_security", "must be starttls, tls or none, got %q", m.SMTPSecurity)
	}
	if (m.SMTPUser == "") != (m.SMTPPassword == "") {
		bad("reports.mail.smtp_user", "needs UIAS_AUDIT_REPORTS_SMTP_PASSWORD, and the password needs the user: set both or neither")
	}
	for _, s := range m.Schedule {
		if !slices.Contains(r.Schedule, s) {
			bad("reports.mail.schedule", "must be reports written (reports.schedule %v), got %q", r.Schedule, s)
		}
	}
	for _, f := range m.Formats {
		if !slices.Contains(r.Formats, f) {
			bad("reports.mail.formats", "must be formats written (reports.formats %v), got %q", r.Formats, f)
		}
	}
}

// bareAddress is the address of a (which may carry a name).
func bareAddress(a string) (string, error) {
	p, err := mail.ParseAddress(a)
	if err != nil {
		return "", err
	}
	return p.Address, nil
}

// mailer is the reports' mailer of the configuration (nil when To is
// empty).
func (m *ReportMailConfig) mailer(rep *audit.Reporter) (*audit.ReportMailer, error) {
	if rep == nil || len(m.To) == 0 {
		return nil, nil
	}
	s := &audit.SMTPSender{Addr: m.SMTPAddr, Security: m.SMTPSecurity, User: m.SMTPUser, Password: m.SMTPPassword}
	if m.SMTPCAFile != "" {
		pem, err := os.ReadFile(m.SMTPCAFile)
		if err != nil {
			return nil, fmt.Errorf("audit.reports.mail.smtp_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("audit.reports.mail.smtp_ca_file %s holds no PEM certificate", m.SMTPCAFile)
		}
		s.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	ml := &audit.ReportMailer{Reporter: rep, Periods: rep.Periods, Formats: rep.Formats, Send: s.Send}
	ml.From, _ = bareAddress(m.From)
	for _, a := range m.To {
		b, _ := bareAddress(a)
		ml.To = append(ml.To, b)
	}
	if len(m.Schedule) > 0 {
		ml.Periods = nil
		for _, p := range m.Schedule {
			ml.Periods = append(ml.Periods, reportPeriods[p])
		}
	}
	if len(m.Formats) > 0 {
		ml.Formats = nil
		for _, f := range m.Formats {
			ml.Formats = append(ml.Formats, reportFormats[f])
		}
	}
	return ml, nil
}

// reporter is the scheduled reports' writer of the configuration (nil
// when reports.dir is empty). A PDF format needs the font: a start
// without it stops with the reason.
func (r *ReportsConfig) reporter(st audit.ReportStore, exp audit.Exporter) (*audit.Reporter, error) {
	if r.Dir == "" {
		return nil, nil
	}
	rep := &audit.Reporter{Store: st, Exporter: exp, Dir: r.Dir, After: r.After, UTCOffset: r.UTCOffset}
	for _, s := range r.Schedule {
		rep.Periods = append(rep.Periods, reportPeriods[s])
	}
	for _, f := range r.Formats {
		rep.Formats = append(rep.Formats, reportFormats[f])
	}
	if slices.Contains(rep.Formats, audit.PDF) {
		if err := audit.CheckPDFFonts(exp.PDFFont, exp.PDFLatinFont); err != nil {
			return nil, fmt.Errorf("audit.reports.formats has pdf but a font of PDFs (audit.pdf_font, audit.pdf_latin_font) cannot be used: %w "+
				"(Debian: apt-get install fonts-droid-fallback fonts-dejavu-core; or leave pdf out of audit.reports.formats)", err)
		}
	}
	return rep, nil
}

// reportMetrics count the scheduled reports written, failed and skipped.
type reportMetrics struct{ written, failed, skipped, mailed, mailFailed prometheus.Counter }

func newReportMetrics(reg prometheus.Registerer) reportMetrics {
	m := reportMetrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_reports_written_total",
			Help: "Scheduled audit report files written (audit.reports)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_report_failures_total",
			Help: "Scheduled audit reports that could not be written (retried at the next check)."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_reports_skipped_total",
			Help: "Periods missed during downtime beyond the catch-up bound (31 days, 8 weeks) whose scheduled report was not written."}),
		mailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_reports_mailed_total",
			Help: "Scheduled audit reports sent by e-mail (audit.reports.mail)."}),
		mailFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_report_mail_failures_total",
			Help: "Attempts to send a scheduled audit report by e-mail that failed (retried later)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Counter{m.written, m.failed, m.skipped, m.mailed, m.mailFailed} {
			_ = reg.Register(c)
		}
	}
	return m
}

// maxMailBackoff is the longest wait between attempts to mail reports
// after failures.
const maxMailBackoff = time.Hour

// runReports writes the reports that are due, at start and then every
// check, and mails them (ml, nil: not), until ctx ends. After a failed
// mailing the next attempt waits twice as many checks each time, up to
// maxMailBackoff.
func runReports(ctx context.Context, rep *audit.Reporter, ml *audit.ReportMailer, check time.Duration, log *zap.Logger, m reportMetrics) {
	t := time.NewTicker(check)
	defer t.Stop()
	var mailAt time.Time
	mailWait := check
	for {
		res, err := rep.RunDue(ctx)
		for _, s := range res.Skipped {
			log.Warn("audit reports of missed periods not written: more than the catch-up bound (use uias ctl audit export for them)",
				zap.Stringer("period", s.Period), zap.Time("from", s.From), zap.Time("to", s.To), zap.Int("periods", s.Count))
			m.skipped.Add(float64(s.Count))
		}
		for _, f := range res.Written {
			log.Info("audit report written", zap.String("file", f))
			m.written.Inc()
		}
		if err != nil && ctx.Err() == nil {
			m.failed.Inc()
			log.Warn("audit report not written; retried at the next check", zap.Error(err))
		}
		if ml != nil && !time.Now().Before(mailAt) {
			sent, err := ml.SendDue(ctx)
			for _, s := range sent {
				log.Info("audit report mailed", zap.String("report", s), zap.Int("addresses", len(ml.To)))
				m.mailed.Inc()
			}
			switch {
			case err == nil:
				mailAt, mailWait = time.Time{}, check
			case ctx.Err() == nil:
				m.mailFailed.Inc()
				var rejected *audit.RejectedError
				if errors.As(err, &rejected) {
					// refused for good: the report is marked and passed
					// over; an operator must look
					log.Error("audit report refused by the mail server; not sent again", zap.Error(err))
				}
				mailAt = time.Now().Add(mailWait)
				log.Warn("audit report not mailed; tried again later", zap.Duration("retry_in", mailWait), zap.Error(err))
				mailWait = min(2*mailWait, maxMailBackoff)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
