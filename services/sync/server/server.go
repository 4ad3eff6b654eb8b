// Package server is the sync component's gRPC layer: thin handlers over
// the replica store and the applier, and the authentication of callers.
package server

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/events"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	usync "github.com/uias/uias/services/sync"
	"github.com/uias/uias/services/sync/applier"
	"github.com/uias/uias/services/sync/provision/provserver"
)

// Server implements SyncAdminService.
type Server struct {
	syncv1.UnimplementedSyncAdminServiceServer
	homes   *centre.Homes
	subtree []string
	st      usync.Store
	ap      *applier.Applier // nil on a single centre
	kick    func()
	auditor *audit.Builder
}

// New returns the server; ap is nil on a single centre (homes nil).
// The audit records of administrators' changes go into the store's
// outbox with them; kick (nil: none) wakes its relay.
func New(homes *centre.Homes, homeSubtrees []string, st usync.Store, ap *applier.Applier, kick func()) *Server {
	return &Server{homes: homes, subtree: homeSubtrees, st: st, ap: ap, kick: kick, auditor: audit.NewBuilder("sync", nil)}
}

// ResolveSkippedChanges implements SyncAdminService.
func (s *Server) ResolveSkippedChanges(ctx context.Context, r *syncv1.ResolveSkippedChangesRequest) (*syncv1.ResolveSkippedChangesResponse, error) {
	if s.homes == nil {
		return nil, usync.ErrNotACentre
	}
	start := time.Now()
	by := "admin"
	if a := adminauth.From(ctx); a != nil {
		by = "admin:" + a.ID
	}
	n, err := s.st.ResolveConflicts(ctx, r.GetEventId(), r.GetObject(), by, start, func(n int64, err error) events.Event {
		res, reason := audit.ResultOf(err)
		detail := map[string]string{"resolved": strconv.FormatInt(n, 10)}
		if r.GetObject() != "" {
			detail["object"] = r.GetObject()
		}
		return s.auditor.Event(ctx, audit.Action{API: "sync.skipped.resolve", Subject: "change:" + r.GetEventId(),
			Result: res, Reason: reason, Start: start, Detail: detail})
	})
	if s.kick != nil {
		s.kick()
	}
	if err != nil {
		return nil, err
	}
	return &syncv1.ResolveSkippedChangesResponse{Resolved: n}, nil
}

// Register adds the service to g.
func (s *Server) Register(g grpc.ServiceRegistrar) { syncv1.RegisterSyncAdminServiceServer(g, s) }

// GetSyncStatus implements SyncAdminService.
func (s *Server) GetSyncStatus(ctx context.Context, _ *syncv1.GetSyncStatusRequest) (*syncv1.SyncStatus, error) {
	if s.homes == nil {
		return &syncv1.SyncStatus{Level: 1}, nil
	}
	out := &syncv1.SyncStatus{Centre: s.homes.Self, Level: int32(s.homes.Level), Parent: s.homes.Parent, HomeSubtrees: s.subtree}
	links, err := s.ap.Status(ctx)
	if err != nil {
		return nil, err
	}
	open, err := s.st.OpenConflicts(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		pl := &syncv1.Link{Peer: l.Origin, Stream: l.Stream, AppliedSeq: l.Cursor.Seq, LastSeq: l.LastSeq, Pending: l.Pending,
			Applied: l.Cursor.Applied, Skipped: l.Cursor.Skipped, Duplicates: l.Cursor.Duplicates, Error: l.Err}
		if l.Peer {
			pl.OpenConflicts = open[l.Origin]
		}
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
	if s.homes == nil {
		return nil, usync.ErrNotACentre
	}
	sk, next, err := s.st.ListSkipped(ctx, usync.SkippedFilter{Open: r.GetOpenOnly()}, int(r.GetPageSize()), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &syncv1.ListSkippedChangesResponse{NextPageToken: next}
	for _, k := range sk {
		c := &syncv1.SkippedChange{EventId: k.EventID, Origin: k.Origin, Kind: k.Kind,
			ObjectId: k.ObjectID, Version: k.Version, AppliedVersion: k.AppliedVersion, Reason: string(k.Reason),
			Time: timestamppb.New(k.Time), Object: k.Object, ResolvedByEventId: k.ResolvedBy}
		if !k.Resolved.IsZero() {
			c.ResolvedTime = timestamppb.New(k.Resolved)
		}
		out.Changes = append(out.Changes, c)
	}
	return out, nil
}

// GetReplicaDigest implements SyncAdminService.
func (s *Server) GetReplicaDigest(ctx context.Context, r *syncv1.GetReplicaDigestRequest) (*syncv1.ReplicaDigest, error) {
	if s.homes == nil {
		return nil, usync.ErrNotACentre
	}
	if err := s.checkDigestFilter(r); err != nil {
		return nil, err
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

// checkDigestFilter refuses a digest filter that names a centre this
// centre does not know or a kind no link carries: either selects nothing,
// and the empty digests it answered at both centres looked equal (a
// misspelt "identity.users" or "l2b" compared nothing and said so with two
// equal sums).
func (s *Server) checkDigestFilter(r *syncv1.GetReplicaDigestRequest) error {
	for i, h := range r.GetHomes() {
		if !s.homes.Known(h) {
			return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest,
				fmt.Sprintf("homes[%d]: %q is not a centre this centre knows (it knows %s)", i, h, strings.Join(s.knownCentres(), ", "))).
				WithMeta(apierr.MetaField, fmt.Sprintf("homes[%d]", i))
		}
	}
	kinds := replicaKinds()
	for i, k := range r.GetKinds() {
		if k == "" || !slices.ContainsFunc(kinds, func(kind string) bool { return strings.HasPrefix(kind, k) }) {
			return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest,
				fmt.Sprintf("kinds[%d]: %q begins no kind the links carry (%s)", i, k, strings.Join(kinds, ", "))).
				WithMeta(apierr.MetaField, fmt.Sprintf("kinds[%d]", i))
		}
	}
	return nil
}

// replicaKinds are the kinds of the replica's objects: what the links
// carry up and down (applier.Up, applier.Down), sorted, each once.
func replicaKinds() []string {
	kinds := applier.KindPrefixes(append(slices.Clone(applier.Up), applier.Down...))
	slices.Sort(kinds)
	return slices.Compact(kinds)
}

// knownCentres are the centres s.homes knows (Homes.Known), sorted.
func (s *Server) knownCentres() []string {
	names := []string{s.homes.Self}
	if s.homes.Parent != "" {
		names = append(names, s.homes.Parent)
	}
	for _, c := range s.homes.Subtrees {
		names = append(names, c)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Perms is the administrator permission of each sync method, asked of
// authz before the handler runs (adminauth.CallerAuth).
var Perms = map[string]adminauth.Perm{
	syncv1.SyncAdminService_GetSyncStatus_FullMethodName:         adminauth.SyncRead,
	syncv1.SyncAdminService_ListSkippedChanges_FullMethodName:    adminauth.SyncRead,
	syncv1.SyncAdminService_ResolveSkippedChanges_FullMethodName: adminauth.SyncWrite,
	syncv1.SyncAdminService_GetReplicaDigest_FullMethodName:      adminauth.SyncRead,

	// Provisioning (provserver asks the same permission again per handler).
	syncv1.SyncProvisioningService_CreateSubscription_FullMethodName:    provserver.PermWrite,
	syncv1.SyncProvisioningService_UpdateSubscription_FullMethodName:    provserver.PermWrite,
	syncv1.SyncProvisioningService_DeleteSubscription_FullMethodName:    provserver.PermWrite,
	syncv1.SyncProvisioningService_StartBatch_FullMethodName:            provserver.PermWrite,
	syncv1.SyncProvisioningService_RetryDeliveries_FullMethodName:       provserver.PermWrite,
	syncv1.SyncProvisioningService_ListSubscriptions_FullMethodName:     provserver.PermRead,
	syncv1.SyncProvisioningService_GetSubscription_FullMethodName:       provserver.PermRead,
	syncv1.SyncProvisioningService_ListDeliveries_FullMethodName:        provserver.PermRead,
	syncv1.SyncProvisioningService_GetDeliveryReport_FullMethodName:     provserver.PermRead,
	syncv1.SyncProvisioningService_GetProvisioningStatus_FullMethodName: provserver.PermRead,
}

// CallerAuth authenticates callers of the sync service: administrators
// (their bearer token, identity) holding the method's permission (authz).
func CallerAuth(c adminauth.Checker) adminauth.CallerAuth {
	return adminauth.CallerAuth{Checker: c, Prefix: "/uias.sync.v1.", Perms: Perms}
}
