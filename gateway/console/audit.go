package console

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
)

// auditPage is the audit log query: its filters and one page of records.
type auditPage struct {
	From, To, Actor, API, Result, Text string
	Records                            []*auditv1.Record
	Next                               template.URL
}

// formTime is the form's time fields' layout (datetime-local, UTC).
const formTime = "2006-01-02T15:04"

func (h *Handler) audit(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "audit")
	// the audit page reads the reminder afresh (a backup just made ends it)
	d.BackupReport = backupReport(&d, h.checkBackup(w, r, s.token))
	q := r.URL.Query()
	p := &auditPage{From: q.Get("from"), To: q.Get("to"), Actor: strings.TrimSpace(q.Get("actor")), API: strings.TrimSpace(q.Get("api")),
		Result: q.Get("result"), Text: strings.TrimSpace(q.Get("text"))}
	d.Page = p
	if h.o.AuditQuery == nil {
		d.Error = d.T("noAudit")
		h.render(w, r, http.StatusServiceUnavailable, "audit", d)
		return
	}
	req := &auditv1.QueryRecordsRequest{Actor: p.Actor, Api: p.API, Result: p.Result, Text: p.Text, PageSize: pageSize,
		PageToken: q.Get("page"), Language: d.Lang}
	for _, f := range []struct {
		v   string
		set **timestamppb.Timestamp
	}{{p.From, &req.StartTime}, {p.To, &req.EndTime}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(formTime, f.v)
		if err != nil {
			d.Error = d.T("badTime")
			h.render(w, r, http.StatusBadRequest, "audit", d)
			return
		}
		*f.set = timestamppb.New(t)
	}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	res, err := h.o.AuditQuery.QueryRecords(ctx, req)
	if err != nil {
		h.failed(w, r, err, "audit", &d)
		return
	}
	p.Records = res.GetRecords()
	if t := res.GetNextPageToken(); t != "" {
		nq := url.Values{}
		for _, k := range []string{"from", "to", "actor", "api", "result", "text"} {
			if v := q.Get(k); v != "" {
				nq.Set(k, v)
			}
		}
		nq.Set("page", t)
		p.Next = template.URL(nq.Encode()) // #nosec G203 -- url.Values.Encode escapes every value
	}
	h.render(w, r, http.StatusOK, "audit", d)
}
