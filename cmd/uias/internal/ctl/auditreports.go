package ctl

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
)

// Analytics and exports of the audit log: "audit counts" and "audit export".

var (
	ctlCountBys = map[string]auditv1.CountBy{"api": auditv1.CountBy_COUNT_BY_API, "result": auditv1.CountBy_COUNT_BY_RESULT,
		"app": auditv1.CountBy_COUNT_BY_APP, "actor": auditv1.CountBy_COUNT_BY_ACTOR, "subject": auditv1.CountBy_COUNT_BY_SUBJECT,
		"ip": auditv1.CountBy_COUNT_BY_CLIENT_IP, "component": auditv1.CountBy_COUNT_BY_COMPONENT,
		"hour": auditv1.CountBy_COUNT_BY_HOUR_OF_DAY, "weekday": auditv1.CountBy_COUNT_BY_WEEKDAY, "org": auditv1.CountBy_COUNT_BY_ORG}
	ctlBuckets = map[string]auditv1.TimeBucket{"": auditv1.TimeBucket_TIME_BUCKET_UNSPECIFIED, "none": auditv1.TimeBucket_TIME_BUCKET_UNSPECIFIED,
		"hour": auditv1.TimeBucket_TIME_BUCKET_HOUR, "day": auditv1.TimeBucket_TIME_BUCKET_DAY}
	ctlFormats = map[string]auditv1.ExportFormat{"csv": auditv1.ExportFormat_EXPORT_FORMAT_CSV, "xlsx": auditv1.ExportFormat_EXPORT_FORMAT_XLSX,
		"html": auditv1.ExportFormat_EXPORT_FORMAT_HTML, "jsonl": auditv1.ExportFormat_EXPORT_FORMAT_JSONL,
		"pdf": auditv1.ExportFormat_EXPORT_FORMAT_PDF}
)

// filterFlags are the record filter's flags (as audit query's).
type filterFlags struct {
	since                                          *time.Duration
	from, to, actor, subject, app, api, result, ip *string
	text, org, origin                              *string
}

func addFilterFlags(fs *flag.FlagSet) *filterFlags {
	return &filterFlags{since: sinceFlag(fs, "records"),
		from:  fs.String("from", "", "records at or after `TIME` (a date, midnight UTC, or RFC 3339)"),
		to:    fs.String("to", "", "records before `TIME` (a date, midnight UTC, or RFC 3339)"),
		actor: fs.String("actor", "", "who acted (e.g. user:ID, app:APP_ID)"), subject: fs.String("subject", "", "what it was done to"),
		app: fs.String("app", "", "App_ID of the calling application"), api: fs.String("api", "", "API id / event kind (e.g. admin.login)"),
		result: fs.String("result", "", "success, failure, denied or incomplete (any case)"), ip: fs.String("ip", "", "client IP address"),
		text:   fs.String("text", "", "substring of subject, actor, reason or detail"),
		org:    fs.String("org", "", "records of the org `ID` and of every org below it"),
		origin: fs.String("origin", "", "only the records of the log `LOG` (a centre's audit.origin; default: every log held)")}
}

func (f *filterFlags) filter() (*auditv1.RecordFilter, error) {
	out := &auditv1.RecordFilter{Actor: *f.actor, Subject: *f.subject, AppId: *f.app, Api: *f.api, Result: *f.result,
		ClientIp: *f.ip, Text: *f.text, OrgId: *f.org, Origin: *f.origin}
	switch {
	case *f.since < 0:
		return nil, usagef("--since must be positive")
	case *f.since > 0 && *f.from != "":
		return nil, usagef("give --since or --from, not both")
	case *f.since > 0:
		out.StartTime = timestamppb.New(time.Now().Add(-*f.since))
	case *f.from != "":
		t, err := parseWhen("from", *f.from)
		if err != nil {
			return nil, err
		}
		out.StartTime = timestamppb.New(t)
	}
	if *f.to != "" {
		t, err := parseWhen("to", *f.to)
		if err != nil {
			return nil, err
		}
		out.EndTime = timestamppb.New(t)
	}
	return out, nil
}

// countFlags are a count report's flags.
type countFlags struct {
	by, bucket    *string
	offset, limit *int
}

func addCountFlags(fs *flag.FlagSet) *countFlags {
	return &countFlags{by: fs.String("by", "", "count by `FIELD`: api, result, app, actor, subject, ip, component, hour, weekday, org"),
		bucket: fs.String("bucket", "", "split over time: none, hour or day"),
		offset: fs.Int("utc-offset", 0, "time zone of hours, weekdays and days, in `MINUTES` (480: China)"),
		limit:  fs.Int("limit", 0, "at most `N` counts (default 100)")}
}

func (c *countFlags) request(f *auditv1.RecordFilter) (*auditv1.CountRecordsRequest, error) {
	by, ok := ctlCountBys[*c.by]
	if !ok {
		return nil, usagef("--by must be api, result, app, actor, subject, ip, component, hour, weekday or org")
	}
	b, ok := ctlBuckets[*c.bucket]
	if !ok {
		return nil, usagef("--bucket must be none, hour or day")
	}
	return &auditv1.CountRecordsRequest{Filter: f, By: by, Bucket: b, UtcOffsetMinutes: int32(*c.offset), Limit: int32(*c.limit)}, nil
}

func auditCountsCmd() command {
	return command{
		usage: "--by FIELD [--bucket none|hour|day] [--utc-offset MINUTES] [--limit N] [filters as in audit query]",
		help: "Counts audit records by a field: failed logins by person (--api authenticate --result failure --by subject),\n" +
			"by application (--by app) or address (--by ip); login peak times (--by hour, --by weekday, with --utc-offset);\n" +
			"records by kind or outcome over time (--by api --bucket day).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			ff, cf := addFilterFlags(fs), addCountFlags(fs)
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				f, err := ff.filter()
				if err != nil {
					return err
				}
				req, err := cf.request(f)
				if err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					res, err := auditv1.NewAuditReportServiceClient(s.conn).CountRecords(s.ctx, req)
					if err != nil {
						return err
					}
					if res.GetTruncated() {
						fmt.Fprintln(os.Stderr, "more groups matched than --limit; the largest are shown")
					}
					return a.output(res, func(tw *tabwriter.Writer) {
						row(tw, "BUCKET", *cf.by, "COUNT")
						for _, c := range res.GetCounts() {
							b := ""
							if c.GetBucketStart() != nil {
								b = c.GetBucketStart().AsTime().Add(time.Duration(*cf.offset) * time.Minute).Format("2006-01-02 15:04")
							}
							row(tw, b, c.GetKey(), strconv.FormatInt(c.GetCount(), 10))
						}
					})
				})
			}
		},
	}
}

func auditExportCmd() command {
	return command{
		usage: "--format csv|xlsx|html|jsonl|pdf [--out FILE] [--max N] [--lang en|zh-CN] [--by FIELD [count flags]] [filters as in audit query]",
		help: "Exports the audit records matching the filters (newest first), or with --by a count report (as audit counts),\n" +
			"to FILE (default: the name the server gives, in the current directory; - for standard output).\n" +
			"--lang zh-CN gives a records export Chinese column headers and descriptions (操作描述).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			ff, cf := addFilterFlags(fs), addCountFlags(fs)
			lang := fs.String("lang", "", "language of a records export's headers and description column: en (default) or zh-CN")
			format := fs.String("format", "", "csv, xlsx, html, jsonl or pdf")
			out := fs.String("out", "", "write to `FILE` (- : standard output)")
			maxRecs := fs.Int("max", 0, "at most `N` records (default and most 1000000)")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				fm, ok := ctlFormats[*format]
				if !ok {
					return usagef("--format must be csv, xlsx, html, jsonl or pdf")
				}
				f, err := ff.filter()
				if err != nil {
					return err
				}
				if *lang != "" && *lang != "en" && *lang != "zh-CN" {
					return usagef("--lang must be en or zh-CN")
				}
				req := &auditv1.ExportRecordsRequest{Filter: f, Format: fm, MaxRecords: int32(*maxRecs), Language: *lang}
				if *cf.by != "" {
					if req.Counts, err = cf.request(f); err != nil {
						return err
					}
				}
				return a.withSession(func(s *session) error {
					st, err := auditv1.NewAuditReportServiceClient(s.conn).ExportRecords(s.ctx, req)
					if err != nil {
						return err
					}
					return saveExport(st, *out)
				})
			}
		},
	}
}

// saveExport writes the file of an export stream to out (its own name
// when empty, - for standard output); a stream cut midway leaves no file.
func saveExport(st grpc.ServerStreamingClient[auditv1.ExportRecordsChunk], out string) error {
	c, err := st.Recv()
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	name := out
	if name == "" {
		name = c.GetFileName()
	}
	var file *os.File
	if name != "-" {
		if file, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return err
		}
		w = file
	}
	n := 0
	for {
		if _, err := w.Write(c.GetData()); err != nil {
			return err
		}
		n += len(c.GetData())
		if c.GetDone() {
			break
		}
		if c, err = st.Recv(); err != nil {
			if file != nil {
				file.Close()
				_ = os.Remove(name) // a partial file must not look whole
			}
			return err
		}
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s (%d bytes)\n", name, n)
	}
	return nil
}
