package ctl

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit/analytics"
)

// Login analytics of the audit log (AuditAnalyticsService): "audit
// failed-logins", "login-peaks", "logins", "absent", "online".

// auditAnalyticsCommands are the analytics verbs of the "audit" noun.
func auditAnalyticsCommands() map[string]command {
	return map[string]command{
		"failed-logins":      auditFailedLoginsCmd(),
		"login-peaks":        auditLoginPeaksCmd(),
		"logins":             auditLoginsCmd(),
		"absent":             auditAbsentCmd(),
		"absence":            auditAbsenceCmd(),
		"online":             auditOnlineCmd(),
		"travel":             auditTravelCmd(),
		"last-access":        auditLastAccessCmd(),
		"outside-allow-list": auditOutsideCmd(),
	}
}

// withVerbs adds more verbs to a noun's.
func withVerbs(verbs map[string]command, more map[string]command) map[string]command {
	for k, v := range more {
		verbs[k] = v
	}
	return verbs
}

// analyticsNote tells a person (not a JSON reader) something about the answer.
func analyticsNote(a *app, msg string) {
	if a.g.output != "json" {
		fmt.Fprintln(a.stderr, "note: "+msg)
	}
}

// originsNote says up to when each level-2 centre's log received here is
// complete (ADR 0029): logins made there since arrive when the link allows.
func originsNote(a *app, origins []*auditv1.OriginStatus) {
	for _, o := range origins {
		if o.GetOwn() {
			continue
		}
		until := "nothing received yet"
		if o.GetCompleteUntil() != nil {
			until = "complete until " + ts(o.GetCompleteUntil())
		}
		analyticsNote(a, fmt.Sprintf("the log %s of a level-2 centre: %s (later records arrive when the link allows)", o.GetOrigin(), until))
	}
}

// loginRange is the --since/--from/--to flags of an analytics command.
type loginRange struct {
	since    *time.Duration
	from, to *string
}

func addLoginRange(fs *flag.FlagSet) *loginRange {
	return &loginRange{since: sinceFlag(fs, "logins"),
		from: fs.String("from", "", "logins at or after `TIME` (a date, midnight UTC, or RFC 3339)"), to: fs.String("to", "", "logins before `TIME` (a date, midnight UTC, or RFC 3339)")}
}

// times returns the start and end of the range (nil: unbounded).
func (r *loginRange) times() (start, end *timestamppb.Timestamp, err error) {
	switch {
	case *r.since < 0:
		return nil, nil, usagef("--since must be positive")
	case *r.since > 0 && *r.from != "":
		return nil, nil, usagef("give --since or --from, not both")
	case *r.since > 0:
		start = timestamppb.New(time.Now().Add(-*r.since))
	case *r.from != "":
		t, err := parseWhen("from", *r.from)
		if err != nil {
			return nil, nil, err
		}
		start = timestamppb.New(t)
	}
	if *r.to != "" {
		t, err := parseWhen("to", *r.to)
		if err != nil {
			return nil, nil, err
		}
		end = timestamppb.New(t)
	}
	return start, end, nil
}

func printLoginCounts(a *app, res *auditv1.LoginCounts, head string) error {
	truncatedNote(a, res.GetTruncated(), "more groups matched than shown; raise --limit")
	return a.output(res, func(tw *tabwriter.Writer) {
		// a person is shown by name and subject (the label is the name)
		named := false
		for _, c := range res.GetCounts() {
			named = named || c.GetLabel() != c.GetKey() && strings.HasPrefix(c.GetKey(), "user:")
		}
		if named {
			row(tw, head, "SUBJECT", "COUNT", "LAST")
		} else {
			row(tw, head, "COUNT", "LAST")
		}
		for _, c := range res.GetCounts() {
			if named {
				row(tw, c.GetLabel(), c.GetKey(), strconv.FormatInt(c.GetCount(), 10), ts(c.GetLast()))
			} else {
				row(tw, c.GetLabel(), strconv.FormatInt(c.GetCount(), 10), ts(c.GetLast()))
			}
		}
	})
}

// analyticsCmd is an analytics command that shows a report or, with
// --export FORMAT [--out FILE], writes it as a file: flags adds the
// command's own flags and returns the function that checks them and makes
// the report's request; export puts that request in an ExportAnalyticsRequest
// (its Format is set here); show asks for the report and prints it.
func analyticsCmd[Req any](usage, help string, flags func(fs *flag.FlagSet) func() (Req, error),
	export func(Req) *auditv1.ExportAnalyticsRequest,
	show func(a *app, s *session, c auditv1.AuditAnalyticsServiceClient, req Req) error) command {
	return command{usage: usage, help: help, setup: func(a *app, fs *flag.FlagSet) func([]string) error {
		build := flags(fs)
		ex := addAnalyticsExport(fs)
		return func(args []string) error {
			if err := wantArgs(args); err != nil {
				return err
			}
			fm, err := ex.check()
			if err != nil {
				return err
			}
			req, err := build()
			if err != nil {
				return err
			}
			return a.withSession(func(s *session) error {
				if fm != 0 {
					e := export(req)
					e.Format = fm
					return ex.run(s, e)
				}
				return show(a, s, auditv1.NewAuditAnalyticsServiceClient(s.conn), req)
			})
		}
	}}
}

// truncatedNote says msg when the answer was cut.
func truncatedNote(a *app, truncated bool, msg string) {
	if truncated {
		analyticsNote(a, msg)
	}
}

func auditFailedLoginsCmd() command {
	heads := map[auditv1.LoginGroup]string{auditv1.LoginGroup_LOGIN_GROUP_PERSON: "PERSON", auditv1.LoginGroup_LOGIN_GROUP_APP: "APP",
		auditv1.LoginGroup_LOGIN_GROUP_CLIENT_IP: "CLIENT IP"}
	return analyticsCmd("--by person|app|ip [--since D | --from T] [--to T] [--limit N]",
		"Counts failed login attempts (failure or denied) by person, application or client address, most first.",
		func(fs *flag.FlagSet) func() (*auditv1.FailedLoginsRequest, error) {
			by := fs.String("by", "", "count by `GROUP`: person, app or ip")
			r := addLoginRange(fs)
			limit := fs.Int("limit", 0, "at most `N` groups (default 100)")
			return func() (*auditv1.FailedLoginsRequest, error) {
				g, ok := map[string]auditv1.LoginGroup{"person": auditv1.LoginGroup_LOGIN_GROUP_PERSON, "app": auditv1.LoginGroup_LOGIN_GROUP_APP,
					"ip": auditv1.LoginGroup_LOGIN_GROUP_CLIENT_IP}[*by]
				if !ok {
					return nil, usagef("--by must be person, app or ip")
				}
				start, end, err := r.times()
				return &auditv1.FailedLoginsRequest{StartTime: start, EndTime: end, By: g, Limit: int32(*limit)}, err
			}
		},
		func(req *auditv1.FailedLoginsRequest) *auditv1.ExportAnalyticsRequest {
			return &auditv1.ExportAnalyticsRequest{Report: &auditv1.ExportAnalyticsRequest_FailedLogins{FailedLogins: req}}
		},
		func(a *app, s *session, c auditv1.AuditAnalyticsServiceClient, req *auditv1.FailedLoginsRequest) error {
			res, err := c.FailedLogins(s.ctx, req)
			if err != nil {
				return err
			}
			return printLoginCounts(a, res, heads[req.GetBy()])
		})
}

func auditLoginPeaksCmd() command {
	heads := map[auditv1.PeakBy]string{auditv1.PeakBy_PEAK_BY_HOUR_OF_DAY: "HOUR", auditv1.PeakBy_PEAK_BY_WEEKDAY: "WEEKDAY"}
	return analyticsCmd("--by hour|weekday [--utc-offset MINUTES] [--since D | --from T] [--to T]",
		"Counts successful logins by hour of the day or by weekday, in the time zone of --utc-offset (480: China).",
		func(fs *flag.FlagSet) func() (*auditv1.LoginPeaksRequest, error) {
			by := fs.String("by", "", "`UNIT`: hour or weekday")
			offset := fs.Int("utc-offset", 0, "time zone of hours and weekdays, in `MINUTES` (480: China)")
			r := addLoginRange(fs)
			return func() (*auditv1.LoginPeaksRequest, error) {
				p, ok := map[string]auditv1.PeakBy{"hour": auditv1.PeakBy_PEAK_BY_HOUR_OF_DAY, "weekday": auditv1.PeakBy_PEAK_BY_WEEKDAY}[*by]
				if !ok {
					return nil, usagef("--by must be hour or weekday")
				}
				start, end, err := r.times()
				return &auditv1.LoginPeaksRequest{StartTime: start, EndTime: end, By: p, UtcOffsetMinutes: int32(*offset)}, err
			}
		},
		func(req *auditv1.LoginPeaksRequest) *auditv1.ExportAnalyticsRequest {
			return &auditv1.ExportAnalyticsRequest{Report: &auditv1.ExportAnalyticsRequest_LoginPeaks{LoginPeaks: req}}
		},
		func(a *app, s *session, c auditv1.AuditAnalyticsServiceClient, req *auditv1.LoginPeaksRequest) error {
			res, err := c.LoginPeaks(s.ctx, req)
			if err != nil {
				return err
			}
			return printLoginCounts(a, res, heads[req.GetBy()])
		})
}

func auditLoginsCmd() command {
	return command{
		usage: "USER_ID [--since D | --from T] [--to T] [--page-size N] [--page-token T] [--all]",
		help:  "Lists a person's login attempts, newest first.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			r := addLoginRange(fs)
			lo := addListFlags(fs, analytics.MaxPageSize)
			return func(args []string) error {
				if err := wantArgs(args, "USER_ID"); err != nil {
					return err
				}
				if err := lo.check(); err != nil {
					return err
				}
				start, end, err := r.times()
				if err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					c := auditv1.NewAuditAnalyticsServiceClient(s.conn)
					logins, next, err := paginate(lo, func(tok string) ([]*auditv1.Login, string, error) {
						res, err := c.LoginHistory(s.ctx, &auditv1.LoginHistoryRequest{UserId: args[0], StartTime: start, EndTime: end,
							PageSize: int32(lo.pageSize), PageToken: tok})
						return res.GetLogins(), res.GetNextPageToken(), err
					})
					if err != nil {
						return err
					}
					a.moreHint(next)
					return a.output(&auditv1.LoginHistoryResponse{Logins: logins, NextPageToken: next}, func(tw *tabwriter.Writer) {
						row(tw, "TIME", "API", "RESULT", "REASON", "APP", "CLIENT IP", "ORIGIN", "SEQ")
						for _, l := range logins {
							row(tw, ts(l.GetTime()), l.GetApi(), l.GetResult(), l.GetReason(), l.GetAppId(), l.GetClientIp(),
								l.GetOrigin(), strconv.FormatInt(l.GetSeq(), 10))
						}
					})
				})
			}
		},
	}
}

func auditAbsenceCmd() command {
	return command{
		usage: "USER_ID [--since D | --from T] [--to T] [--utc-offset MINUTES] [--weekdays]",
		help: "Shows one person's absence over a period (default the last 30 days, at most 366): each day, cut at\n" +
			"midnight in --utc-offset (480: China), with or without a successful login, and how many of each.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			r := addLoginRange(fs)
			offset := fs.Int("utc-offset", 0, "the days' time zone, in `MINUTES` east of UTC (480: China)")
			weekdays := fs.Bool("weekdays", false, "count Monday to Friday only")
			return func(args []string) error {
				if err := wantArgs(args, "USER_ID"); err != nil {
					return err
				}
				start, end, err := r.times()
				if err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					res, err := auditv1.NewAuditAnalyticsServiceClient(s.conn).PersonAbsence(s.ctx, &auditv1.PersonAbsenceRequest{
						UserId: args[0], StartTime: start, EndTime: end, UtcOffsetMinutes: int32(*offset), WeekdaysOnly: *weekdays})
					if err != nil {
						return err
					}
					truncatedNote(a, res.GetTruncated(), "more logins than one question reads: the oldest days may show absent; narrow the period")
					return a.output(res, func(tw *tabwriter.Writer) {
						row(tw, "DATE", "PRESENT", "LOGINS", "FIRST LOGIN")
						for _, d := range res.GetDays() {
							present := "no"
							if d.GetPresent() {
								present = "yes"
							}
							row(tw, d.GetDate(), present, strconv.Itoa(int(d.GetLogins())), ts(d.GetFirst()))
						}
						fmt.Fprintf(tw, "present %d day(s), absent %d\n", res.GetPresentDays(), res.GetAbsentDays())
					})
				})
			}
		},
	}
}

func auditAbsentCmd() command {
	return analyticsCmd("--days N [--limit N]",
		"Lists the active people who have not logged in successfully for more than N days: those who never did\n"+
			"first, then the longest absent (without the identity component: only people with a stored login).",
		func(fs *flag.FlagSet) func() (*auditv1.AbsencesRequest, error) {
			days := fs.Int("days", 0, "`N` days without a successful login (1-3650)")
			limit := fs.Int("limit", 0, "at most `N` people (default 100)")
			return func() (*auditv1.AbsencesRequest, error) {
				if *days < 1 {
					return nil, usagef("--days must be at least 1")
				}
				return &auditv1.AbsencesRequest{Days: int32(*days), Limit: int32(*limit)}, nil
			}
		},
		func(req *auditv1.AbsencesRequest) *auditv1.ExportAnalyticsRequest {
			return &auditv1.ExportAnalyticsRequest{Report: &auditv1.ExportAnalyticsRequest_Absences{Absences: req}}
		},
		func(a *app, s *session, c auditv1.AuditAnalyticsServiceClient, req *auditv1.AbsencesRequest) error {
			res, err := c.Absences(s.ctx, req)
			if err != nil {
				return err
			}
			truncatedNote(a, res.GetTruncated(), "more people matched than shown; raise --limit")
			if res.GetSource() != "identity" {
				analyticsNote(a, "the identity component was not asked: people who never logged in are not listed")
			}
			originsNote(a, res.GetOrigins())
			return a.output(res, func(tw *tabwriter.Writer) {
				row(tw, "USER", "LOGIN", "ORG", "LAST LOGIN", "DAYS")
				for _, x := range res.GetAbsences() {
					last := ts(x.GetLastLogin())
					if x.GetNeverLoggedIn() {
						last = "never (account of " + ts(x.GetCreated()) + ")"
					}
					row(tw, x.GetUserId(), x.GetLogin(), x.GetOrg(), last, strconv.Itoa(int(x.GetDaysAbsent())))
				}
			})
		})
}

func auditOnlineCmd() command {
	return analyticsCmd("[--from-logins] [--window MINUTES] [--limit N]",
		"Lists the people online now: those with a live SSO session (the ticket component), or, without it or\n"+
			"with --from-logins, those with a recent login in the audit log and no logout since.",
		func(fs *flag.FlagSet) func() (*auditv1.OnlineNowRequest, error) {
			fromLogins := fs.Bool("from-logins", false, "answer from the audit log's recent logins (administrators' logins start no SSO session)")
			window := fs.Int("window", 0, "with the audit log's logins: a login counts as online this many `MINUTES` (default audit.analytics.online_window)")
			limit := fs.Int("limit", 0, "at most `N` people (default 1000)")
			return func() (*auditv1.OnlineNowRequest, error) {
				return &auditv1.OnlineNowRequest{WindowMinutes: int32(*window), Limit: int32(*limit), FromAuditLog: *fromLogins}, nil
			}
		},
		func(req *auditv1.OnlineNowRequest) *auditv1.ExportAnalyticsRequest {
			return &auditv1.ExportAnalyticsRequest{Report: &auditv1.ExportAnalyticsRequest_Online{Online: req}}
		},
		func(a *app, s *session, c auditv1.AuditAnalyticsServiceClient, req *auditv1.OnlineNowRequest) error {
			res, err := c.OnlineNow(s.ctx, req)
			if err != nil {
				return err
			}
			switch res.GetSource() {
			case "ticket":
				analyticsNote(a, "from the live SSO sessions; SINCE is when the latest session started")
			case "ticket+logins":
				analyticsNote(a, "from this centre's live SSO sessions and the level-2 centres' recent logins")
			default:
				analyticsNote(a, "from the audit log: recent logins without a logout")
			}
			originsNote(a, res.GetOrigins())
			truncatedNote(a, res.GetTruncated(), "more people are online than shown; raise --limit")
			// the number online (004 2.1.7.2 "检查当前访问网络的用户数量")
			if res.GetTruncated() {
				analyticsNote(a, fmt.Sprintf("more than %d people online", len(res.GetPeople())))
			} else {
				analyticsNote(a, fmt.Sprintf("%d people online", len(res.GetPeople())))
			}
			return a.output(res, func(tw *tabwriter.Writer) {
				row(tw, "USER", "NAME", "ORG", "SINCE", "CLIENT IP", "APP")
				for _, p := range res.GetPeople() {
					row(tw, p.GetUserId(), dash(p.GetName()), p.GetOrg(), ts(p.GetSince()), p.GetClientIp(), p.GetAppId())
				}
			})
		})
}

func auditTravelCmd() command {
	return analyticsCmd("[--since D | --from T] [--to T] [--limit N]",
		"Lists impossible travel: a person's consecutive successful logins from places further apart than plausible\n"+
			"in the time between (needs audit.analytics.geoip_db; default range: the last 7 days).",
		func(fs *flag.FlagSet) func() (*auditv1.ImpossibleTravelRequest, error) {
			r := addLoginRange(fs)
			limit := fs.Int("limit", 0, "at most `N` travels (default 100)")
			return func() (*auditv1.ImpossibleTravelRequest, error) {
				start, end, err := r.times()
				return &auditv1.ImpossibleTravelRequest{StartTime: start, EndTime: end, Limit: int32(*limit)}, err
			}
		},
		func(req *auditv1.ImpossibleTravelRequest) *auditv1.ExportAnalyticsRequest {
			return &auditv1.ExportAnalyticsRequest{Report: &auditv1.ExportAnalyticsRequest_ImpossibleTravel{ImpossibleTravel: req}}
		},
		func(a *app, s *session, c auditv1.AuditAnalyticsServiceClient, req *auditv1.ImpossibleTravelRequest) error {
			res, err := c.ImpossibleTravel(s.ctx, req)
			if err != nil {
				return err
			}
			truncatedNote(a, res.GetTruncated(), "more travels, or more logins than one question reads: narrow the range or raise --limit")
			place := func(p *auditv1.TravelPlace) string {
				return strings.TrimPrefix(p.GetCity()+", "+p.GetCountry(), ", ") + " (" + p.GetClientIp() + ")"
			}
			return a.output(res, func(tw *tabwriter.Writer) {
				row(tw, "USER", "NAME", "FROM", "AT", "TO", "AT", "KM", "KM/H")
				for _, t := range res.GetTravels() {
					speed := strconv.FormatFloat(t.GetSpeedKmh(), 'f', 0, 64)
					if t.GetSameTime() {
						speed = "same time"
					}
					row(tw, t.GetUserId(), dash(t.GetName()), place(t.GetFrom()), ts(t.GetFrom().GetTime()), place(t.GetTo()), ts(t.GetTo().GetTime()),
						strconv.FormatFloat(t.GetDistanceKm(), 'f', 0, 64), speed)
				}
			})
		})
}

func auditLastAccessCmd() command {
	return analyticsCmd("[--apps ID,ID] [--user USER_ID] [--since D | --from T] [--to T] [--limit N]",
		"Lists, per person and application, the latest access (login, ticket) to the important applications\n"+
			"(audit.analytics.important_apps, or --apps), by application then the latest first.",
		func(fs *flag.FlagSet) func() (*auditv1.LastAccessRequest, error) {
			apps := fs.String("apps", "", "these applications (comma-separated App_IDs or codes, `APPS`) instead of audit.analytics.important_apps")
			user := fs.String("user", "", "only person `USER_ID`")
			r := addLoginRange(fs)
			limit := fs.Int("limit", 0, "at most `N` rows (default 100)")
			return func() (*auditv1.LastAccessRequest, error) {
				start, end, err := r.times()
				var ids []string
				for _, id := range strings.Split(*apps, ",") {
					if id = strings.TrimSpace(id); id != "" {
						ids = append(ids, id)
					}
				}
				return &auditv1.LastAccessRequest{StartTime: start, EndTime: end, AppIds: ids, UserId: *user, Limit: int32(*limit)}, err
			}
		},
		func(req *auditv1.LastAccessRequest) *auditv1.ExportAnalyticsRequest {
			return &auditv1.ExportAnalyticsRequest{Report: &auditv1.ExportAnalyticsRequest_LastAccess{LastAccess: req}}
		},
		func(a *app, s *session, c auditv1.AuditAnalyticsServiceClient, req *auditv1.LastAccessRequest) error {
			res, err := c.LastAccess(s.ctx, req)
			if err != nil {
				return err
			}
			truncatedNote(a, res.GetTruncated(), "more rows, or more records than one question reads: narrow the range or raise --limit")
			return a.output(res, func(tw *tabwriter.Writer) {
				row(tw, "APP", "USER", "NAME", "ORG", "LAST ACCESS", "API", "CLIENT IP", "COUNT")
				for _, x := range res.GetAccesses() {
					row(tw, x.GetAppId(), x.GetUserId(), dash(x.GetName()), x.GetOrg(), ts(x.GetLastAccess()), x.GetApi(), x.GetClientIp(),
						strconv.FormatInt(x.GetCount(), 10))
				}
			})
		})
}

func auditOutsideCmd() command {
	return analyticsCmd("[--since D | --from T] [--to T] [--limit N]",
		"Lists the stored login attempts from addresses outside audit.analytics.allowed_networks, newest first.",
		func(fs *flag.FlagSet) func() (*auditv1.OutsideAllowListRequest, error) {
			r := addLoginRange(fs)
			limit := fs.Int("limit", 0, "at most `N` attempts (default 100)")
			return func() (*auditv1.OutsideAllowListRequest, error) {
				start, end, err := r.times()
				return &auditv1.OutsideAllowListRequest{StartTime: start, EndTime: end, Limit: int32(*limit)}, err
			}
		},
		func(req *auditv1.OutsideAllowListRequest) *auditv1.ExportAnalyticsRequest {
			return &auditv1.ExportAnalyticsRequest{Report: &auditv1.ExportAnalyticsRequest_OutsideAllowList{OutsideAllowList: req}}
		},
		func(a *app, s *session, c auditv1.AuditAnalyticsServiceClient, req *auditv1.OutsideAllowListRequest) error {
			res, err := c.OutsideAllowList(s.ctx, req)
			if err != nil {
				return err
			}
			truncatedNote(a, res.GetTruncated(), "more attempts, or more logins than one question reads: narrow the range or raise --limit")
			return a.output(res, func(tw *tabwriter.Writer) {
				row(tw, "TIME", "SUBJECT", "NAME", "ORG", "API", "RESULT", "APP", "CLIENT IP")
				for _, x := range res.GetAttempts() {
					l := x.GetLogin()
					row(tw, ts(l.GetTime()), x.GetSubject(), dash(x.GetName()), x.GetOrg(), l.GetApi(), l.GetResult(), l.GetAppId(), l.GetClientIp())
				}
			})
		})
}

// analyticsExport is the --export and --out flags of an analytics command:
// the report as a file instead of a table.
type analyticsExport struct{ format, out *string }

func addAnalyticsExport(fs *flag.FlagSet) *analyticsExport {
	return &analyticsExport{format: fs.String("export", "", "write the report as a file: csv, xlsx, html, jsonl or pdf"),
		out: fs.String("out", "", "with --export: write to `FILE` (default: the name the server gives; - : standard output)")}
}

// check returns the format of --export (0: none).
func (e *analyticsExport) check() (auditv1.ExportFormat, error) {
	if *e.format == "" {
		if *e.out != "" {
			return 0, usagef("--out goes with --export")
		}
		return 0, nil
	}
	fm, ok := ctlFormats[*e.format]
	if !ok {
		return 0, usagef("--export must be csv, xlsx, html, jsonl or pdf")
	}
	return fm, nil
}

// run writes the report of req as a file.
func (e *analyticsExport) run(s *session, req *auditv1.ExportAnalyticsRequest) error {
	st, err := auditv1.NewAuditAnalyticsServiceClient(s.conn).ExportAnalytics(s.ctx, req)
	if err != nil {
		return err
	}
	return saveExport(st, *e.out)
}
