package component

import (
	"context"
	"fmt"
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
type reportMetrics struct{ written, failed, skipped prometheus.Counter }

func newReportMetrics(reg prometheus.Registerer) reportMetrics {
	m := reportMetrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_reports_written_total",
			Help: "Scheduled audit report files written (audit.reports)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_report_failures_total",
			Help: "Scheduled audit reports that could not be written (retried at the next check)."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_reports_skipped_total",
			Help: "Periods missed during downtime beyond the catch-up bound (31 days, 8 weeks) whose scheduled report was not written."}),
	}
	if reg != nil {
		_ = reg.Register(m.written)
		_ = reg.Register(m.failed)
		_ = reg.Register(m.skipped)
	}
	return m
}

// runReports writes the reports that are due, at start and then every
// check, until ctx ends.
func runReports(ctx context.Context, rep *audit.Reporter, check time.Duration, log *zap.Logger, m reportMetrics) {
	t := time.NewTicker(check)
	defer t.Stop()
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
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
