// Package server is the audit component's gRPC layer: thin handlers over
// the audit log, and the authentication of its callers.
package server

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
)

// Server implements AuditLogService.
type Server struct {
	auditv1.UnimplementedAuditLogServiceServer
	log      *audit.Log
	archives ArchiveOptions
	origins  *audit.Origins
}

// New returns the server of l.
func New(l *audit.Log) *Server { return &Server{log: l} }

// Register adds the services to g.
func (s *Server) Register(g grpc.ServiceRegistrar) { auditv1.RegisterAuditLogServiceServer(g, s) }

// Perms is the administrator permission of each audit method, asked of
// authz before the handler runs (adminauth.CallerAuth): reading records is
// audit.records read, checkpoints and proofs of the whole log are verify,
// counts are read, exports (files of records or reports) are export and
// backups and removals of records are archive. As the maritime design
// (004 2.1.7.1) has it, the security auditor holds all of them, the system
// administrator all but archive ("queries all logs"), and a unit
// administrator read and export over the org subtrees they administer
// ("queries their own org's logs": the methods in Scoped, whose records
// are limited to those orgs).
var Perms = map[string]adminauth.Perm{
	auditv1.AuditLogService_GetCheckpoint_FullMethodName:    adminauth.AuditVerify,
	auditv1.AuditLogService_ProveInclusion_FullMethodName:   adminauth.AuditRead,
	auditv1.AuditLogService_ProveConsistency_FullMethodName: adminauth.AuditVerify,
	auditv1.AuditLogService_VerifyLog_FullMethodName:        adminauth.AuditVerify,
	// backups and removals of records; the reminder's status asks for
	// audit.records archive itself (archive.go: if_allowed)
	auditv1.AuditLogService_ArchiveRecords_FullMethodName:   adminauth.AuditArchive,
	auditv1.AuditLogService_GetArchiveStatus_FullMethodName: adminauth.HandlerDecides,
	auditv1.AuditQueryService_QueryRecords_FullMethodName:   adminauth.AuditRead,
	auditv1.AuditReportService_CountRecords_FullMethodName:  adminauth.AuditRead,
	auditv1.AuditReportService_ExportRecords_FullMethodName: adminauth.AuditExport,
	// analytics (analytics.go): reading the audit log
	auditv1.AuditAnalyticsService_FailedLogins_FullMethodName:     adminauth.AuditRead,
	auditv1.AuditAnalyticsService_LoginPeaks_FullMethodName:       adminauth.AuditRead,
	auditv1.AuditAnalyticsService_LoginHistory_FullMethodName:     adminauth.AuditRead,
	auditv1.AuditAnalyticsService_Absences_FullMethodName:         adminauth.AuditRead,
	auditv1.AuditAnalyticsService_PersonAbsence_FullMethodName:    adminauth.AuditRead,
	auditv1.AuditAnalyticsService_OnlineNow_FullMethodName:        adminauth.AuditRead,
	auditv1.AuditAnalyticsService_ImpossibleTravel_FullMethodName: adminauth.AuditRead,
	auditv1.AuditAnalyticsService_LastAccess_FullMethodName:       adminauth.AuditRead,
	auditv1.AuditAnalyticsService_OutsideAllowList_FullMethodName: adminauth.AuditRead,
	auditv1.AuditAnalyticsService_ExportAnalytics_FullMethodName:  adminauth.AuditExport,
}

// Scoped are the methods of Perms a unit administrator may call over the
// org subtrees they administer: queries, counts, exports and analytics of
// records (each limited to the records of those orgs). Proofs, checkpoints
// and verification concern the whole log.
var Scoped = map[string]bool{
	auditv1.AuditQueryService_QueryRecords_FullMethodName:         true,
	auditv1.AuditReportService_CountRecords_FullMethodName:        true,
	auditv1.AuditReportService_ExportRecords_FullMethodName:       true,
	auditv1.AuditAnalyticsService_FailedLogins_FullMethodName:     true,
	auditv1.AuditAnalyticsService_LoginPeaks_FullMethodName:       true,
	auditv1.AuditAnalyticsService_LoginHistory_FullMethodName:     true,
	auditv1.AuditAnalyticsService_Absences_FullMethodName:         true,
	auditv1.AuditAnalyticsService_PersonAbsence_FullMethodName:    true,
	auditv1.AuditAnalyticsService_OnlineNow_FullMethodName:        true,
	auditv1.AuditAnalyticsService_ImpossibleTravel_FullMethodName: true,
	auditv1.AuditAnalyticsService_LastAccess_FullMethodName:       true,
	auditv1.AuditAnalyticsService_OutsideAllowList_FullMethodName: true,
	auditv1.AuditAnalyticsService_ExportAnalytics_FullMethodName:  true,
}

// CallerAuth authenticates callers of the audit services: administrators
// (their bearer token, identity) holding the method's permission (authz).
// subtrees expands the top orgs of a unit administrator's subtrees into
// every org in them (records name the exact org of their subject).
func CallerAuth(c adminauth.Checker, subtrees func(ctx context.Context, tops []string) ([]string, error)) adminauth.CallerAuth {
	return adminauth.CallerAuth{Checker: c, Prefix: "/uias.audit.v1.", Perms: Perms, Scoped: Scoped, Subtrees: subtrees}
}

// scope is the caller's scope: the orgs CallerAuth limited a Scoped call
// to, else everything (the administrator holds the method's permission
// without an org scope).
func scope(ctx context.Context) (audit.Scope, error) {
	a := adminauth.From(ctx)
	if a == nil {
		return audit.Scope{}, apierr.New(apierr.Unauthenticated, "UNAUTHENTICATED", "no administrator")
	}
	if orgs, limited := adminauth.ScopeFrom(ctx); limited {
		return audit.ScopeOf(audit.Principal{UserID: a.ID, OrgID: a.OrgID, Orgs: orgs})
	}
	return audit.ScopeOf(audit.Principal{UserID: a.ID, OrgID: a.OrgID, All: true})
}

// Subtrees lists the orgs of org subtrees (the tops and every org below
// them), as identity answers the calling administrator.
type Subtrees func(ctx context.Context, tops []string) ([]string, error)

// orgScope is the caller's scope narrowed to the subtree of orgID (an
// org filter; "": the scope as it is).
func orgScope(ctx context.Context, subtrees Subtrees, orgID string) (audit.Scope, error) {
	sc, err := scope(ctx)
	if err != nil || orgID == "" {
		return sc, err
	}
	if subtrees == nil {
		return audit.Scope{}, apierr.ErrUnavailable.WithMessage("the orgs cannot be listed here (no identity component): ask without org_id")
	}
	orgs, err := subtrees(ctx, []string{orgID})
	if err != nil {
		return audit.Scope{}, err
	}
	if len(orgs) == 0 {
		return audit.Scope{}, apierr.New(apierr.NotFound, "NOT_FOUND", "no org "+orgID)
	}
	return audit.WithinOrg(sc, orgs)
}

// ExportLog appends the record of an export to the audit log.
type ExportLog func(ctx context.Context, rec audit.Record) error

// recordExport appends the record of e (the caller, their address and now
// filled in) with log; nil log records nothing. A record that cannot be
// written fails the export before its last chunk: no export leaves
// without its record.
func recordExport(ctx context.Context, log ExportLog, e audit.Export) error {
	if log == nil {
		return nil
	}
	if a := adminauth.From(ctx); a != nil {
		e.Actor, e.ActorLogin = "user:"+a.ID, a.Login
	}
	if ip := grpcx.ClientIP(ctx); ip.IsValid() {
		e.ClientIP = ip.String()
	}
	e.Remark = caller.From(ctx).Remark
	return log(ctx, audit.ExportRecord(e, time.Now()))
}

func wholeLog(ctx context.Context) error {
	sc, err := scope(ctx)
	if err != nil {
		return err
	}
	return audit.ScopeAll(sc)
}

// GetCheckpoint implements AuditLogService.
func (s *Server) GetCheckpoint(ctx context.Context, r *auditv1.GetCheckpointRequest) (*auditv1.Checkpoint, error) {
	if err := wholeLog(ctx); err != nil {
		return nil, err
	}
	var cp *audit.Checkpoint
	var err error
	if r.GetSize() == 0 {
		cp, err = s.log.Latest(ctx)
	} else {
		cp, err = s.log.CheckpointAt(ctx, r.GetSize())
	}
	if err != nil {
		return nil, err
	}
	return s.checkpoint(cp), nil
}

// ProveInclusion implements AuditLogService.
func (s *Server) ProveInclusion(ctx context.Context, r *auditv1.ProveInclusionRequest) (*auditv1.InclusionProof, error) {
	if err := wholeLog(ctx); err != nil {
		return nil, err
	}
	p, err := s.log.ProveInclusion(ctx, r.GetSeq(), r.GetSize())
	if err != nil {
		return nil, err
	}
	out := &auditv1.InclusionProof{Record: RecordPB(p.Record), LeafHash: p.LeafHash[:], Checkpoint: s.checkpoint(p.Checkpoint)}
	for _, h := range p.Proof {
		out.Proof = append(out.Proof, h[:])
	}
	return out, nil
}

// ProveConsistency implements AuditLogService.
func (s *Server) ProveConsistency(ctx context.Context, r *auditv1.ProveConsistencyRequest) (*auditv1.ConsistencyProof, error) {
	if err := wholeLog(ctx); err != nil {
		return nil, err
	}
	p, err := s.log.ProveConsistency(ctx, r.GetOldSize(), r.GetNewSize())
	if err != nil {
		return nil, err
	}
	out := &auditv1.ConsistencyProof{Old: s.checkpoint(p.Old), New: s.checkpoint(p.New)}
	for _, h := range p.Proof {
		out.Proof = append(out.Proof, h[:])
	}
	return out, nil
}

// VerifyLog implements AuditLogService: the own log and every peer log
// held (ADR 0029), or the one origin asked for, each against its own tree
// and signed checkpoints.
func (s *Server) VerifyLog(ctx context.Context, r *auditv1.VerifyLogRequest) (*auditv1.VerifyLogResponse, error) {
	if err := wholeLog(ctx); err != nil {
		return nil, err
	}
	vs, ownRep, err := s.verifyOrigins(ctx, r.GetOrigin())
	if err != nil {
		return nil, err
	}
	first := vs[0]
	out := &auditv1.VerifyLogResponse{Ok: true, Records: first.GetRecords(), Checkpoints: first.GetCheckpoints(), SignedSize: first.GetSignedSize(),
		BadSeq: first.GetBadSeq(), Problem: first.GetProblem(), BadCheckpoint: first.GetBadCheckpoint(), Unverified: first.GetUnverified(),
		Origins: vs}
	if ownRep != nil {
		out.Archived = ownRep.Archived
	}
	for _, v := range vs {
		out.Ok = out.Ok && v.GetOk()
	}
	return out, nil
}

func (s *Server) checkpoint(c *audit.Checkpoint) *auditv1.Checkpoint {
	return &auditv1.Checkpoint{Size: c.Size, RootHash: c.Root[:], Time: timestamppb.New(c.Time), Note: string(c.Note),
		VerifierKeys: s.log.Signer().VerifierKeys()}
}

// RecordPB is the message of a record.
func RecordPB(r *audit.Record) *auditv1.Record {
	return &auditv1.Record{Seq: r.Seq, EventId: r.EventID, Type: r.Type, Component: r.Component, Time: timestamppb.New(r.Time),
		Serial: r.Serial, TraceId: r.TraceID, AppId: r.AppID, Api: r.API, Actor: r.Actor, Subject: r.Subject, Org: r.Org,
		Result: r.Result, Reason: r.Reason, DurationMs: r.DurationMS, ClientIp: r.ClientIP, Detail: r.Detail, LeafData: r.LeafData(),
		Origin: r.Origin}
}
