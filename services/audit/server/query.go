package server

import (
	"context"

	"google.golang.org/grpc"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
)

// QueryServer implements AuditQueryService.
type QueryServer struct {
	auditv1.UnimplementedAuditQueryServiceServer
	store    audit.QueryStore
	names    audit.Names
	subtrees Subtrees
}

// NewQuery returns the query server over st.
func NewQuery(st audit.QueryStore) *QueryServer { return &QueryServer{store: st} }

// WithNames makes the answers name the people who are actors (actor_name).
func (s *QueryServer) WithNames(n audit.Names) *QueryServer {
	s.names = n
	return s
}

// WithOrgs lets the queries filter by org subtree (org_id).
func (s *QueryServer) WithOrgs(t Subtrees) *QueryServer {
	s.subtrees = t
	return s
}

// Register adds the service to g.
func (s *QueryServer) Register(g grpc.ServiceRegistrar) {
	auditv1.RegisterAuditQueryServiceServer(g, s)
}

// QueryRecords implements AuditQueryService.
func (s *QueryServer) QueryRecords(ctx context.Context, r *auditv1.QueryRecordsRequest) (*auditv1.QueryRecordsResponse, error) {
	sc, err := orgScope(ctx, s.subtrees, r.GetOrgId())
	if err != nil {
		return nil, err
	}
	q := audit.Query{Actor: r.GetActor(), Subject: r.GetSubject(), AppID: r.GetAppId(), API: r.GetApi(), Result: r.GetResult(),
		ClientIP: r.GetClientIp(), Text: r.GetText(), PageSize: int(r.GetPageSize()), PageToken: r.GetPageToken(),
		Origin: r.GetOrigin()}
	if r.GetStartTime() != nil {
		q.From = r.GetStartTime().AsTime()
	}
	if r.GetEndTime() != nil {
		q.To = r.GetEndTime().AsTime()
	}
	recs, next, err := audit.Search(ctx, s.store, sc, q)
	if err != nil {
		return nil, err
	}
	out := &auditv1.QueryRecordsResponse{NextPageToken: next, Records: make([]*auditv1.Record, len(recs))}
	lang, _ := audit.ParseLang(r.GetLanguage()) // validated
	names := audit.PeopleNames(ctx, s.names, recs)
	for i := range recs {
		out.Records[i] = RecordPB(&recs[i])
		out.Records[i].ActorName = audit.ActorName(names, &recs[i])
		out.Records[i].Description = audit.Describe(&recs[i], out.Records[i].ActorName, names[recs[i].Subject], lang)
	}
	return out, nil
}
