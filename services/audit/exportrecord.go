package audit

import (
	"strconv"
	"time"

	pkgaudit "github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/ids"
)

// TypeExport is the event type of the record the audit component adds for
// each export of the log (records, counts or an analytics report): who
// exported what, so that "who took which records out" is an audit question
// of its own, as it is for backups (TypeArchive).
const TypeExport = "audit.export"

// Export is what an export wrote, for its record.
type Export struct {
	// Actor ("user:<id>"), ActorLogin and ClientIP: who asked, from where;
	// Remark: the remark they gave the call.
	Actor, ActorLogin, ClientIP, Remark string
	// Report: "records", "counts" or the analytics report's name.
	Report string
	Format Format
	// File is the name the file was offered under.
	File string
	// Filter: the records' filter (records and counts; its org filter as
	// OrgID); By: what counts were counted by.
	Filter Query
	OrgID  string
	By     CountBy
	// Rows is how many records (or counts, or report rows) were written.
	Rows int
	// Broken: the export ended before all was sent (the client went away,
	// a failure): Rows were sent.
	Broken bool
}

// ExportRecord is the record of e, at now: type audit.export, written by
// the audit component, with the format, the filters given and how many
// rows left in its detail.
func ExportRecord(e Export, now time.Time) Record {
	d := map[string]string{"report": e.Report, "format": e.Format.Ext(), "file": e.File, "rows": strconv.Itoa(e.Rows)}
	if e.ActorLogin != "" {
		d[DetailActorLogin] = e.ActorLogin
	}
	if e.Remark != "" {
		d[pkgaudit.DetailRemark] = e.Remark // checked text (grpcx), kept whole as in every record
	}
	f := e.Filter
	for k, v := range map[string]string{"actor": f.Actor, "subject": f.Subject, "app_id": f.AppID, "api": f.API, "result": f.Result,
		"client_ip": f.ClientIP, "text": f.Text, "org_id": e.OrgID, "origin": f.Origin} {
		if v != "" {
			d["filter_"+k] = pkgaudit.Text(v) // the caller's words: escaped and cut as every such value
		}
	}
	if !f.From.IsZero() {
		d["filter_start_time"] = f.From.UTC().Format(time.RFC3339Nano)
	}
	if !f.To.IsZero() {
		d["filter_end_time"] = f.To.UTC().Format(time.RFC3339Nano)
	}
	if e.By != 0 {
		d["by"] = e.By.String()
	}
	result, reason := "success", "OK"
	if e.Broken {
		result, reason = "failure", "INCOMPLETE"
	}
	return Record{EventID: ids.New(), Type: TypeExport, Component: "audit", Time: now.UTC().Truncate(time.Millisecond),
		API: "export", Actor: e.Actor, Subject: "audit:records", Result: result, Reason: reason, ClientIP: e.ClientIP, Detail: d}
}
