package server

import (
	"context"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
)

// AnalyticsServer implements AuditAnalyticsService.
type AnalyticsServer struct {
	auditv1.UnimplementedAuditAnalyticsServiceServer
	a *analytics.Analytics
	// window is the default online window.
	window time.Duration
	// exp writes the reports as files (ExportAnalytics).
	exp audit.Exporter
	log ExportLog
	// names: the people's names shown beside their ids (nil: ids only)
	names audit.Names
	// origins: the logs held (ADR 0029), whose completeness the login
	// reports state.
	origins *audit.Origins
}

// WithNames makes the reports name the people in them ("login (Display
// Name)", as identity knows them now; D9 of the auditor's trial: ids
// alone had to be looked up one by one).
func (s *AnalyticsServer) WithNames(n audit.Names) *AnalyticsServer {
	s.names = n
	return s
}

// namesOf returns the names of the people among subjects, by subject
// (best effort, see audit.SubjectNames).
func (s *AnalyticsServer) namesOf(ctx context.Context, n int, subject func(i int) string) map[string]string {
	subjects := make([]string, n)
	for i := range subjects {
		subjects[i] = subject(i)
	}
	return audit.SubjectNames(ctx, s.names, subjects)
}

// WithExportLog records every report exported in the audit log
// (audit.export).
func (s *AnalyticsServer) WithExportLog(l ExportLog) *AnalyticsServer {
	s.log = l
	return s
}

// NewAnalytics returns the analytics server over a; window is the
// default online window (a login counts as online that long), exp writes
// the reports as files.
func NewAnalytics(a *analytics.Analytics, window time.Duration, exp audit.Exporter) *AnalyticsServer {
	return &AnalyticsServer{a: a, window: window, exp: exp}
}

// Register adds the service to g.
func (s *AnalyticsServer) Register(g grpc.ServiceRegistrar) {
	auditv1.RegisterAuditAnalyticsServiceServer(g, s)
}

type timeRange interface {
	GetStartTime() *timestamppb.Timestamp
	GetEndTime() *timestamppb.Timestamp
}

func rangeOf(r timeRange) analytics.Range {
	var out analytics.Range
	if r.GetStartTime() != nil {
		out.From = r.GetStartTime().AsTime()
		if out.From.IsZero() {
			// the earliest time given (0001-01-01T00:00:00Z): from the
			// beginning, not "none given" (a report's own default)
			out.From = out.From.Add(time.Nanosecond)
		}
	}
	if r.GetEndTime() != nil {
		out.To = r.GetEndTime().AsTime()
	}
	return out
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// loginCounts is the answer of counts cs grouped by g; names labels the
// people (by subject) when g is BySubject.
func loginCounts(g analytics.Group, cs []analytics.Count, truncated bool, names map[string]string) *auditv1.LoginCounts {
	out := &auditv1.LoginCounts{Truncated: truncated, Counts: make([]*auditv1.LoginCount, len(cs))}
	for i, c := range cs {
		label := analytics.Label(g, c.Key)
		if n := names[c.Key]; n != "" {
			label = n
		}
		out.Counts[i] = &auditv1.LoginCount{Key: c.Key, Label: label, Count: c.Count, Last: ts(c.Last)}
	}
	return out
}

// FailedLogins implements AuditAnalyticsService.
func (s *AnalyticsServer) FailedLogins(ctx context.Context, r *auditv1.FailedLoginsRequest) (*auditv1.LoginCounts, error) {
	sc, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	g := map[auditv1.LoginGroup]analytics.Group{auditv1.LoginGroup_LOGIN_GROUP_PERSON: analytics.BySubject,
		auditv1.LoginGroup_LOGIN_GROUP_APP: analytics.ByApp, auditv1.LoginGroup_LOGIN_GROUP_CLIENT_IP: analytics.ByClientIP}[r.GetBy()]
	cs, truncated, err := s.a.FailedLogins(ctx, sc, rangeOf(r), g, int(r.GetLimit()))
	if err != nil {
		return nil, err
	}
	var names map[string]string
	if g == analytics.BySubject {
		names = s.namesOf(ctx, len(cs), func(i int) string { return cs[i].Key })
	}
	return loginCounts(g, cs, truncated, names), nil
}

// LoginPeaks implements AuditAnalyticsService.
func (s *AnalyticsServer) LoginPeaks(ctx context.Context, r *auditv1.LoginPeaksRequest) (*auditv1.LoginCounts, error) {
	sc, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	g := map[auditv1.PeakBy]analytics.Group{auditv1.PeakBy_PEAK_BY_HOUR_OF_DAY: analytics.ByHourOfDay,
		auditv1.PeakBy_PEAK_BY_WEEKDAY: analytics.ByWeekday}[r.GetBy()]
	cs, err := s.a.LoginPeaks(ctx, sc, rangeOf(r), g, time.Duration(r.GetUtcOffsetMinutes())*time.Minute)
	if err != nil {
		return nil, err
	}
	return loginCounts(g, cs, false, nil), nil
}

// LoginHistory implements AuditAnalyticsService.
func (s *AnalyticsServer) LoginHistory(ctx context.Context, r *auditv1.LoginHistoryRequest) (*auditv1.LoginHistoryResponse, error) {
	sc, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	recs, next, err := s.a.LoginHistory(ctx, sc, r.GetUserId(), rangeOf(r), int(r.GetPageSize()), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &auditv1.LoginHistoryResponse{NextPageToken: next, Logins: make([]*auditv1.Login, len(recs))}
	for i, rec := range recs {
		out.Logins[i] = &auditv1.Login{Time: ts(rec.Time), Api: rec.API, Result: rec.Result, Reason: rec.Reason, AppId: rec.AppID,
			ClientIp: rec.ClientIP, Seq: rec.Seq, Origin: rec.Origin}
	}
	if out.Origins, err = s.originStatus(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// PersonAbsence implements AuditAnalyticsService.
func (s *AnalyticsServer) PersonAbsence(ctx context.Context, r *auditv1.PersonAbsenceRequest) (*auditv1.PersonAbsenceResponse, error) {
	sc, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	res, err := s.a.PersonAbsence(ctx, sc, r.GetUserId(), rangeOf(r), time.Duration(r.GetUtcOffsetMinutes())*time.Minute, r.GetWeekdaysOnly())
	if err != nil {
		return nil, err
	}
	out := &auditv1.PersonAbsenceResponse{UserId: r.GetUserId(), PresentDays: int32(res.PresentDays), AbsentDays: int32(res.AbsentDays),
		Truncated: res.Truncated, Days: make([]*auditv1.PersonDay, len(res.Days))}
	for i, d := range res.Days {
		out.Days[i] = &auditv1.PersonDay{Date: d.Date, Present: d.Present, Logins: int32(d.Logins), First: ts(d.First)}
	}
	return out, nil
}

// Absences implements AuditAnalyticsService.
func (s *AnalyticsServer) Absences(ctx context.Context, r *auditv1.AbsencesRequest) (*auditv1.AbsencesResponse, error) {
	sc, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := s.a.AbsenceReport(ctx, sc, int(r.GetDays()), int(r.GetLimit()))
	if err != nil {
		return nil, err
	}
	out := &auditv1.AbsencesResponse{Source: rep.Source, Truncated: rep.Truncated, Absences: make([]*auditv1.Absence, len(rep.People))}
	for i, a := range rep.People {
		out.Absences[i] = &auditv1.Absence{Subject: a.Subject, UserId: analytics.UserID(a.Subject), Org: a.Org,
			LastLogin: ts(a.Time), DaysAbsent: int32(a.Days), NeverLoggedIn: a.Never, Created: ts(a.Created), Login: a.Login}
	}
	if out.Origins, err = s.originStatus(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// OnlineNow implements AuditAnalyticsService.
func (s *AnalyticsServer) OnlineNow(ctx context.Context, r *auditv1.OnlineNowRequest) (*auditv1.OnlineNowResponse, error) {
	sc, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	window := s.window
	if r.GetWindowMinutes() > 0 {
		window = time.Duration(r.GetWindowMinutes()) * time.Minute
	}
	on, err := s.a.OnlineNow(ctx, sc, window, int(r.GetLimit()), r.GetFromAuditLog())
	if err != nil {
		return nil, err
	}
	out := &auditv1.OnlineNowResponse{Source: on.Source, Truncated: on.Truncated, People: make([]*auditv1.OnlinePerson, len(on.People))}
	names := s.namesOf(ctx, len(on.People), func(i int) string { return on.People[i].Subject })
	for i, p := range on.People {
		out.People[i] = &auditv1.OnlinePerson{UserId: analytics.UserID(p.Subject), Org: p.Org, Since: ts(p.Time), ClientIp: p.ClientIP,
			AppId: p.AppID, Name: names[p.Subject]}
	}
	if out.Origins, err = s.originStatus(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

func travelPlace(p analytics.Place) *auditv1.TravelPlace {
	return &auditv1.TravelPlace{Time: ts(p.Time), ClientIp: p.ClientIP, Country: p.Country, City: p.City, Latitude: p.Lat, Longitude: p.Lon}
}

// ImpossibleTravel implements AuditAnalyticsService.
func (s *AnalyticsServer) ImpossibleTravel(ctx context.Context, r *auditv1.ImpossibleTravelRequest) (*auditv1.ImpossibleTravelResponse, error) {
	sc, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	trs, truncated, err := s.a.ImpossibleTravel(ctx, sc, rangeOf(r), int(r.GetLimit()))
	if err != nil {
		return nil, err
	}
	out := &auditv1.ImpossibleTravelResponse{Truncated: truncated, Travels: make([]*auditv1.ImpossibleTravel, len(trs))}
	names := s.namesOf(ctx, len(trs), func(i int) string { return trs[i].Subject })
	for i, t := range trs {
		out.Travels[i] = &auditv1.ImpossibleTravel{UserId: analytics.UserID(t.Subject), Org: t.Org, From: travelPlace(t.From),
			To: travelPlace(t.To), DistanceKm: t.DistanceKM, Name: names[t.Subject]}
		if math.IsInf(t.SpeedKMH, 1) {
			out.Travels[i].SameTime = true
		} else {
			out.Travels[i].SpeedKmh = t.SpeedKMH
		}
	}
	return out, nil
}

// LastAccess implements AuditAnalyticsService.
func (s *AnalyticsServer) LastAccess(ctx context.Context, r *auditv1.LastAccessRequest) (*auditv1.LastAccessResponse, error) {
	sc, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	acc, truncated, err := s.a.LastAccess(ctx, sc, rangeOf(r), r.GetAppIds(), r.GetUserId(), int(r.GetLimit()))
	if err != nil {
		return nil, err
	}
	out := &auditv1.LastAccessResponse{Truncated: truncated, Accesses: make([]*auditv1.ResourceAccess, len(acc))}
	names := s.namesOf(ctx, len(acc), func(i int) string { return acc[i].Subject })
	for i, a := range acc {
		out.Accesses[i] = &auditv1.ResourceAccess{UserId: analytics.UserID(a.Subject), Org: a.Org, AppId: a.AppID, LastAccess: ts(a.Time),
			Api: a.API, ClientIp: a.ClientIP, Count: a.Count, Name: names[a.Subject]}
	}
	return out, nil
}

// OutsideAllowList implements AuditAnalyticsService.
func (s *AnalyticsServer) OutsideAllowList(ctx context.Context, r *auditv1.OutsideAllowListRequest) (*auditv1.OutsideAllowListResponse, error) {
	sc, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	recs, truncated, err := s.a.OutsideAllowList(ctx, sc, rangeOf(r), int(r.GetLimit()))
	if err != nil {
		return nil, err
	}
	out := &auditv1.OutsideAllowListResponse{Truncated: truncated, Attempts: make([]*auditv1.OutsideAttempt, len(recs))}
	names := s.namesOf(ctx, len(recs), func(i int) string { return recs[i].Subject })
	for i, rec := range recs {
		out.Attempts[i] = &auditv1.OutsideAttempt{Subject: rec.Subject, UserId: analytics.UserID(rec.Subject), Org: rec.Org, Name: names[rec.Subject],
			Login: &auditv1.Login{Time: ts(rec.Time), Api: rec.API, Result: rec.Result, Reason: rec.Reason, AppId: rec.AppID,
				ClientIp: rec.ClientIP, Seq: rec.Seq, Origin: rec.Origin}}
	}
	return out, nil
}
