package server

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/apierr"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
)

// ExportAnalytics implements AuditAnalyticsService: the report's own
// handler answers the question, its answer becomes one table (with a chart
// for counts) written by the audit exporter.
func (s *AnalyticsServer) ExportAnalytics(r *auditv1.ExportAnalyticsRequest, st grpc.ServerStreamingServer[auditv1.ExportRecordsChunk]) error {
	ctx := st.Context()
	sec, name, err := s.reportSection(ctx, r)
	if err != nil {
		return err
	}
	f := audit.Format(r.GetFormat())
	file := "audit-" + name + "-" + time.Now().UTC().Format("20060102-150405") + "." + f.Ext()
	w := &chunkWriter{st: st, first: &auditv1.ExportRecordsChunk{ContentType: f.ContentType(), FileName: file}}
	if err := s.exp.Table(sec, f, w); err != nil {
		return err
	}
	if err := recordExport(ctx, s.log, audit.Export{Report: name, Format: f, File: file, Rows: len(sec.Rows)}); err != nil {
		return err
	}
	return w.send(w.buf.Bytes(), true)
}

func tsText(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func num[T int32 | int64](n T) string { return strconv.FormatInt(int64(n), 10) }

// countsChart is the bar chart of login counts: one bar per slot (hours,
// weekdays) or per key, the largest first.
func countsChart(title string, cs []*auditv1.LoginCount, slots bool) *audit.Chart {
	if len(cs) == 0 {
		return nil
	}
	c := &audit.Chart{Title: title, Horizontal: !slots}
	if !slots {
		cs = cs[:min(len(cs), audit.MaxChartBars)]
	}
	for _, x := range cs {
		name := x.GetLabel()
		if name == "" {
			name = "(none)"
		}
		label := name
		if slots {
			label = x.GetKey()
		} else if r := []rune(label); len(r) > 32 {
			label = string(r[:31]) + "…"
		}
		c.Labels, c.Names, c.Values = append(c.Labels, label), append(c.Names, name), append(c.Values, x.GetCount())
	}
	return c
}

// reportSection answers the report of r and lays it out as a table; name
// is the report's name in the file name.
func (s *AnalyticsServer) reportSection(ctx context.Context, r *auditv1.ExportAnalyticsRequest) (audit.Section, string, error) {
	switch x := r.GetReport().(type) {
	case *auditv1.ExportAnalyticsRequest_FailedLogins:
		res, err := s.FailedLogins(ctx, x.FailedLogins)
		if err != nil {
			return audit.Section{}, "", err
		}
		by := map[auditv1.LoginGroup]string{auditv1.LoginGroup_LOGIN_GROUP_PERSON: "person", auditv1.LoginGroup_LOGIN_GROUP_APP: "application",
			auditv1.LoginGroup_LOGIN_GROUP_CLIENT_IP: "client address"}[x.FailedLogins.GetBy()]
		sec := audit.Section{Title: "Failed logins by " + by, Header: []string{by, "count", "last"}, Weights: []float64{3, 1, 2},
			Empty: "No failed login.", Chart: countsChart("Failed logins by "+by, res.GetCounts(), false)}
		person := x.FailedLogins.GetBy() == auditv1.LoginGroup_LOGIN_GROUP_PERSON
		if person { // the name, then the subject it is the name of
			sec.Header, sec.Weights = []string{by, "subject", "count", "last"}, []float64{3, 3, 1, 2}
		}
		for _, c := range res.GetCounts() {
			row := []string{c.GetLabel(), num(c.GetCount()), tsText(c.GetLast())}
			if person {
				row = slices.Insert(row, 1, c.GetKey())
			}
			sec.Rows = append(sec.Rows, row)
		}
		return sec, "failed-logins", nil
	case *auditv1.ExportAnalyticsRequest_LoginPeaks:
		res, err := s.LoginPeaks(ctx, x.LoginPeaks)
		if err != nil {
			return audit.Section{}, "", err
		}
		by := "hour of the day"
		if x.LoginPeaks.GetBy() == auditv1.PeakBy_PEAK_BY_WEEKDAY {
			by = "weekday"
		}
		sec := audit.Section{Title: "Logins by " + by, Header: []string{by, "logins"}, Weights: []float64{2, 1},
			Chart: countsChart("Logins by "+by, res.GetCounts(), true)}
		for _, c := range res.GetCounts() {
			sec.Rows = append(sec.Rows, []string{c.GetLabel(), num(c.GetCount())})
		}
		return sec, "login-peaks", nil
	case *auditv1.ExportAnalyticsRequest_Absences:
		res, err := s.Absences(ctx, x.Absences)
		if err != nil {
			return audit.Section{}, "", err
		}
		sec := audit.Section{Title: "No login for more than " + num(x.Absences.GetDays()) + " days",
			Header: []string{"user_id", "login", "org", "last_login", "days"}, Weights: []float64{3, 2, 3, 2, 1}, Empty: "Nobody is absent."}
		for _, a := range res.GetAbsences() {
			last := tsText(a.GetLastLogin())
			if a.GetNeverLoggedIn() {
				last = "never"
			}
			sec.Rows = append(sec.Rows, []string{a.GetUserId(), a.GetLogin(), a.GetOrg(), last, num(a.GetDaysAbsent())})
		}
		return sec, "absences", nil
	case *auditv1.ExportAnalyticsRequest_Online:
		res, err := s.OnlineNow(ctx, x.Online)
		if err != nil {
			return audit.Section{}, "", err
		}
		sec := audit.Section{Title: "Online now (" + res.GetSource() + ")", Header: []string{"user_id", "name", "org", "since", "client_ip", "app_id"},
			Weights: []float64{3, 3, 3, 2, 2, 2}, Empty: "Nobody is online."}
		for _, p := range res.GetPeople() {
			sec.Rows = append(sec.Rows, []string{p.GetUserId(), p.GetName(), p.GetOrg(), tsText(p.GetSince()), p.GetClientIp(), p.GetAppId()})
		}
		return sec, "online", nil
	case *auditv1.ExportAnalyticsRequest_ImpossibleTravel:
		res, err := s.ImpossibleTravel(ctx, x.ImpossibleTravel)
		if err != nil {
			return audit.Section{}, "", err
		}
		place := func(p *auditv1.TravelPlace) string {
			return strings.TrimPrefix(p.GetCity()+", "+p.GetCountry(), ", ") + " (" + p.GetClientIp() + ")"
		}
		sec := audit.Section{Title: "Impossible travel", Header: []string{"user_id", "name", "from", "at", "to", "at", "km", "km/h"},
			Weights: []float64{3, 3, 3, 2, 3, 2, 1, 1}, Empty: "No impossible travel."}
		for _, t := range res.GetTravels() {
			speed := strconv.FormatFloat(t.GetSpeedKmh(), 'f', 0, 64)
			if t.GetSameTime() {
				speed = "same time"
			}
			sec.Rows = append(sec.Rows, []string{t.GetUserId(), t.GetName(), place(t.GetFrom()), tsText(t.GetFrom().GetTime()), place(t.GetTo()),
				tsText(t.GetTo().GetTime()), strconv.FormatFloat(t.GetDistanceKm(), 'f', 0, 64), speed})
		}
		return sec, "impossible-travel", nil
	case *auditv1.ExportAnalyticsRequest_LastAccess:
		res, err := s.LastAccess(ctx, x.LastAccess)
		if err != nil {
			return audit.Section{}, "", err
		}
		sec := audit.Section{Title: "Last access to important applications",
			Header:  []string{"app_id", "user_id", "name", "org", "last_access", "api", "client_ip", "count"},
			Weights: []float64{2, 3, 3, 2, 2, 2, 2, 1}, Empty: "No access."}
		for _, a := range res.GetAccesses() {
			sec.Rows = append(sec.Rows, []string{a.GetAppId(), a.GetUserId(), a.GetName(), a.GetOrg(), tsText(a.GetLastAccess()), a.GetApi(),
				a.GetClientIp(), num(a.GetCount())})
		}
		return sec, "last-access", nil
	case *auditv1.ExportAnalyticsRequest_OutsideAllowList:
		res, err := s.OutsideAllowList(ctx, x.OutsideAllowList)
		if err != nil {
			return audit.Section{}, "", err
		}
		sec := audit.Section{Title: "Login attempts from outside the allow-list",
			Header:  []string{"time", "subject", "name", "org", "api", "result", "app_id", "client_ip"},
			Weights: []float64{2, 3, 3, 2, 2, 1, 2, 2}, Empty: "No attempt from outside the allow-list."}
		for _, a := range res.GetAttempts() {
			l := a.GetLogin()
			sec.Rows = append(sec.Rows, []string{tsText(l.GetTime()), a.GetSubject(), a.GetName(), a.GetOrg(), l.GetApi(), l.GetResult(), l.GetAppId(),
				l.GetClientIp()})
		}
		return sec, "outside-allow-list", nil
	}
	return audit.Section{}, "", apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, "name the report to export")
}
