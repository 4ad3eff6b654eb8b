package component

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
)

// AnalyticsExportPath is the REST download of an analytics report: the
// file itself, with format and the report's own query parameters.
const AnalyticsExportPath = "/v1/audit/analytics/export/{report}"

// analyticsReports are the reports of AnalyticsExportPath: each makes its
// question (filled from the query parameters, as the report's own REST
// call) and sets it in the export request.
var analyticsReports = map[string]func(r *auditv1.ExportAnalyticsRequest) proto.Message{
	"failed-logins": func(r *auditv1.ExportAnalyticsRequest) proto.Message {
		q := &auditv1.FailedLoginsRequest{}
		r.Report = &auditv1.ExportAnalyticsRequest_FailedLogins{FailedLogins: q}
		return q
	},
	"login-peaks": func(r *auditv1.ExportAnalyticsRequest) proto.Message {
		q := &auditv1.LoginPeaksRequest{}
		r.Report = &auditv1.ExportAnalyticsRequest_LoginPeaks{LoginPeaks: q}
		return q
	},
	"absences": func(r *auditv1.ExportAnalyticsRequest) proto.Message {
		q := &auditv1.AbsencesRequest{}
		r.Report = &auditv1.ExportAnalyticsRequest_Absences{Absences: q}
		return q
	},
	"online": func(r *auditv1.ExportAnalyticsRequest) proto.Message {
		q := &auditv1.OnlineNowRequest{}
		r.Report = &auditv1.ExportAnalyticsRequest_Online{Online: q}
		return q
	},
	"impossible-travel": func(r *auditv1.ExportAnalyticsRequest) proto.Message {
		q := &auditv1.ImpossibleTravelRequest{}
		r.Report = &auditv1.ExportAnalyticsRequest_ImpossibleTravel{ImpossibleTravel: q}
		return q
	},
	"last-access": func(r *auditv1.ExportAnalyticsRequest) proto.Message {
		q := &auditv1.LastAccessRequest{}
		r.Report = &auditv1.ExportAnalyticsRequest_LastAccess{LastAccess: q}
		return q
	},
	"outside-allow-list": func(r *auditv1.ExportAnalyticsRequest) proto.Message {
		q := &auditv1.OutsideAllowListRequest{}
		r.Report = &auditv1.ExportAnalyticsRequest_OutsideAllowList{OutsideAllowList: q}
		return q
	},
}

func registerAnalyticsExport(mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	cl := auditv1.NewAuditAnalyticsServiceClient(conn)
	return mux.HandlePath(http.MethodGet, AnalyticsExportPath, func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		req := &auditv1.ExportAnalyticsRequest{}
		serveDownload(mux, w, r, auditv1.AuditAnalyticsService_ExportAnalytics_FullMethodName, AnalyticsExportPath,
			func() error {
				format, ok := exportFormats[r.URL.Query().Get("format")]
				if !ok {
					return badParam("format must be csv, xlsx, html, jsonl or pdf")
				}
				req.Format = format
				report, ok := analyticsReports[params["report"]]
				if !ok {
					return badParam("report must be failed-logins, login-peaks, absences, online, impossible-travel, last-access or outside-allow-list")
				}
				if err := runtime.PopulateQueryParameters(report(req), r.URL.Query(), utilities.NewDoubleArray([][]string{{"format"}})); err != nil {
					return badParam(err.Error())
				}
				return nil
			},
			func(ctx context.Context, empty bool) (exportStream, error) {
				if empty {
					return cl.ExportAnalytics(ctx, &auditv1.ExportAnalyticsRequest{})
				}
				return cl.ExportAnalytics(ctx, req)
			})
	})
}
