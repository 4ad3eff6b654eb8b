// Package server is the sync component's gRPC layer: thin handlers over
// the replica store and the applier, and the authentication of callers.
package server

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/grpcx"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	usync "github.com/uias/uias/services/sync"
	"github.com/uias/uias/services/sync/applier"
)

// Server implements SyncAdminService.
type Server struct {
	syncv1.UnimplementedSyncAdminServiceServer
	homes   *centre.Homes
	subtree []string
	st      usync.Store
	ap      *applier.Applier // nil on a single centre
}

// New returns the server; ap is nil on a single centre (homes nil).
func New(homes *centre.Homes, homeSubtrees []string, st usync.Store, ap *applier.Applier) *Server {
	return &Server{homes: homes, subtree: homeSubtrees, st: st, ap: ap}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { syncv1.RegisterSyncAdminServiceServer(g, s) }

// GetSyncStatus implements SyncAdminService.
func (s *Server) GetSyncStatus(ctx context.Context, _ *syncv1.GetSyncStatusRequest) (*syncv1.SyncStatus, error) {
	if err := systemAdmin(ctx); err != nil {
		return nil, err
	}
	if s.homes == nil {
		return &syncv1.SyncStatus{Level: 1}, nil
	}
	out := &syncv1.SyncStatus{Centre: s.homes.Self, Level: int32(s.homes.Level), Parent: s.homes.Parent, HomeSubtrees: s.subtree}
	links, err := s.ap.Status(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		pl := &syncv1.Link{Peer: l.Origin, Stream: l.Stream, AppliedSeq: l.Cursor.Seq, LastSeq: l.LastSeq, Pending: l.Pending,
			Applied: l.Cursor.Applied, Skipped: l.Cursor.Skipped, Error: l.Err}
		if !l.Cursor.LastApplied.IsZero() {
			pl.LastAppliedTime = timestamppb.New(l.Cursor.LastApplied)
		}
		if l.Peer {
			pl.SourceState = "waiting"
			if l.SourceActive {
				pl.SourceState = "active"
			}
		}
		out.Links = append(out.Links, pl)
	}
	return out, nil
}

// ListSkippedChanges implements SyncAdminService.
func (s *Server) ListSkippedChanges(ctx context.Context, r *syncv1.ListSkippedChangesRequest) (*syncv1.ListSkippedChangesResponse, error) {
	if err := systemAdmin(ctx); err != nil {
		return nil, err
	}
	if s.homes == nil {
		return nil, usync.ErrNotACentre
	}
	sk, next, err := s.st.ListSkipped(ctx, int(r.GetPageSize()), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &syncv1.ListSkippedChangesResponse{NextPageToken: next}
	for _, k := range sk {
		out.Changes = append(out.Changes, &syncv1.SkippedChange{EventId: k.EventID, Origin: k.Origin, Kind: k.Kind,
			ObjectId: k.ObjectID, Version: k.Version, AppliedVersion: k.AppliedVersion, Reason: string(k.Reason),
			Time: timestamppb.New(k.Time)})
	}
	return out, nil
}

// GetReplicaDigest implements SyncAdminService.
func (s *Server) GetReplicaDigest(ctx context.Context, r *syncv1.GetReplicaDigestRequest) (*syncv1.ReplicaDigest, error) {
	if err := systemAdmin(ctx); err != nil {
		return nil, err
	}
	if s.homes == nil {
		return nil, usync.ErrNotACentre
	}
	ds, err := s.st.Digest(ctx, usync.DigestFilter{Homes: r.GetHomes(), KindPrefixes: r.GetKinds()})
	if err != nil {
		return nil, err
	}
	out := &syncv1.ReplicaDigest{}
	for _, d := range ds {
		out.Tables = append(out.Tables, &syncv1.TableDigest{Table: d.Table, Rows: d.Rows, Sha256: d.SHA256})
	}
	return out, nil
}

type adminKey struct{}

// systemAdmin refuses callers who are not system administrators.
func systemAdmin(ctx context.Context) error {
	if sys, ok := ctx.Value(adminKey{}).(bool); ok && sys {
		return nil
	}
	return usync.ErrForbidden
}

// CallerAuth authenticates callers of the sync service: administrators,
// whose bearer token identity resolves (pkg/adminauth: WhoAmI).
type CallerAuth struct {
	Admins adminauth.Checker
}

// AuthenticateCaller implements grpcx.CallerAuth.
func (a CallerAuth) AuthenticateCaller(ctx context.Context, method string) (context.Context, error) {
	c := &caller.Caller{ClientIP: grpcx.ClientIP(ctx), RequestID: grpcx.RequestID(ctx), ClientCert: grpcx.ClientCertSHA256(ctx)}
	ctx = caller.With(ctx, c)
	switch {
	case strings.HasPrefix(method, "/uias.sync.v1."):
		// identity checks the token (and audits a refusal); its error is
		// answered as it is
		adm, err := a.Admins.Authenticate(ctx, grpcx.BearerToken(ctx))
		if err != nil {
			return nil, err
		}
		c.Principal = adm.ID
		ctx = adminauth.With(ctx, adm)
		ctx = context.WithValue(ctx, adminKey{}, adm.SystemAdminFlag)
	case strings.HasPrefix(method, "/grpc.health.v1.Health/"), strings.HasPrefix(method, "/grpc.reflection."):
	default:
		return nil, apierr.New(apierr.Unimplemented, "UNIMPLEMENTED", "unknown method")
	}
	o := grpcx.OriginFrom(ctx)
	if c.Principal != "" {
		o.Principal = c.Principal
	}
	return grpcx.WithOrigin(ctx, o), nil
}
