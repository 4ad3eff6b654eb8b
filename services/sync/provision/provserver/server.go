// Package provserver is the gRPC layer of provisioning
// (SyncProvisioningService): thin handlers over provision.Service, each
// checking the administrator's sync.subscriptions permission with authz.
package provserver

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/grpcx"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	"github.com/uias/uias/services/sync/provision"
)

// Permissions of the uias application that the service asks authz for
// (docs: admin permissions table).
var (
	PermRead  = adminauth.Perm{Resource: "sync.subscriptions", Operation: "read"}
	PermWrite = adminauth.Perm{Resource: "sync.subscriptions", Operation: "write"}
)

// Server implements SyncProvisioningService.
type Server struct {
	syncv1.UnimplementedSyncProvisioningServiceServer
	svc    *provision.Service
	admins adminauth.Checker
	// Audit publishes an audit event (nil: none).
	audit   func(ctx context.Context, ev events.Event)
	auditor *audit.Builder
}

// New returns the server.
func New(svc *provision.Service, admins adminauth.Checker, publish func(ctx context.Context, ev events.Event)) *Server {
	return &Server{svc: svc, admins: admins, audit: publish, auditor: audit.NewBuilder("sync", nil)}
}

// Register adds the service to g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	syncv1.RegisterSyncProvisioningServiceServer(g, s)
}

func (s *Server) allow(ctx context.Context, p adminauth.Perm) error {
	return s.admins.Authorize(ctx, adminauth.From(ctx), p, "")
}

// record audits an administrative change.
func (s *Server) record(ctx context.Context, api, subject string, start time.Time, err error, detail map[string]string) {
	if s.audit == nil {
		return
	}
	res, reason := audit.ResultOf(err)
	s.audit(ctx, s.auditor.Event(ctx, audit.Action{API: api, Subject: subject, Result: res, Reason: reason, Start: start, Detail: detail}))
}

func fromProto(p *syncv1.Subscription) *provision.Subscription {
	sel := p.GetSelection()
	return &provision.Subscription{ID: p.GetId(), App: p.GetApp(), Name: p.GetName(),
		Selection: provision.Selection{Orgs: sel.GetOrgs(), Roles: sel.GetRoles(), Groups: sel.GetGroups(), Linked: sel.GetLinked()},
		Transport: p.GetTransport(), Endpoint: p.GetEndpoint(), Settings: p.GetSettings(), Secret: p.GetSecret(),
		Strategy: p.GetStrategy(), BatchEvery: time.Duration(p.GetBatchEverySeconds()) * time.Second, Enabled: p.GetEnabled(),
		BatchAt: p.GetBatchAt(), BatchTimeZone: p.GetBatchTimeZone(), DeliverRoles: p.GetDeliverRoles()}
}

func toProto(s *provision.Subscription) *syncv1.Subscription {
	out := &syncv1.Subscription{Id: s.ID, App: s.App, Name: s.Name,
		Selection: &syncv1.Selection{Orgs: s.Selection.Orgs, Roles: s.Selection.Roles, Groups: s.Selection.Groups, Linked: s.Selection.Linked},
		Transport: s.Transport, Endpoint: s.Endpoint, Settings: s.Settings, HasSecret: s.HasSecret(), Strategy: s.Strategy,
		BatchEverySeconds: int64(s.BatchEvery / time.Second), Enabled: s.Enabled,
		CreateTime: timestamppb.New(s.CreatedAt), UpdateTime: timestamppb.New(s.UpdatedAt), InitialBatch: s.InitialBatch,
		BatchAt: s.BatchAt, BatchTimeZone: s.BatchTimeZone, DeliverRoles: s.DeliverRoles}
	if !s.LastBatchAt.IsZero() {
		out.LastBatchTime = timestamppb.New(s.LastBatchAt)
	}
	return out
}

// CreateSubscription implements SyncProvisioningService.
func (s *Server) CreateSubscription(ctx context.Context, r *syncv1.CreateSubscriptionRequest) (*syncv1.Subscription, error) {
	start := time.Now()
	if err := s.allow(ctx, PermWrite); err != nil {
		return nil, err
	}
	sub, err := s.svc.Create(ctx, fromProto(r.GetSubscription()))
	id := ""
	if sub != nil {
		id = sub.ID
	}
	s.record(ctx, "subscription.create", "subscription:"+id, start, err, map[string]string{"app": r.GetSubscription().GetApp(),
		"transport": r.GetSubscription().GetTransport()})
	if err != nil {
		return nil, err
	}
	return toProto(sub), nil
}

// ListSubscriptions implements SyncProvisioningService.
func (s *Server) ListSubscriptions(ctx context.Context, r *syncv1.ListSubscriptionsRequest) (*syncv1.ListSubscriptionsResponse, error) {
	if err := s.allow(ctx, PermRead); err != nil {
		return nil, err
	}
	subs, err := s.svc.Store.ListSubscriptions(ctx, r.GetApp())
	if err != nil {
		return nil, err
	}
	out := &syncv1.ListSubscriptionsResponse{}
	for _, sub := range subs {
		out.Subscriptions = append(out.Subscriptions, toProto(sub))
	}
	return out, nil
}

// GetSubscription implements SyncProvisioningService.
func (s *Server) GetSubscription(ctx context.Context, r *syncv1.GetSubscriptionRequest) (*syncv1.Subscription, error) {
	if err := s.allow(ctx, PermRead); err != nil {
		return nil, err
	}
	sub, err := s.svc.Store.GetSubscription(ctx, r.GetId())
	if err != nil {
		return nil, err
	}
	return toProto(sub), nil
}

// UpdateSubscription implements SyncProvisioningService.
func (s *Server) UpdateSubscription(ctx context.Context, r *syncv1.UpdateSubscriptionRequest) (*syncv1.Subscription, error) {
	start := time.Now()
	if err := s.allow(ctx, PermWrite); err != nil {
		return nil, err
	}
	if id := r.GetSubscription().GetId(); id != "" && id != r.GetId() {
		// a body naming another subscription was answered for the id's
		// (review sec12 #7)
		return nil, grpcx.BadRequest("subscription.id", "subscription.id differs from id: give the same, or leave it out")
	}
	in := fromProto(r.GetSubscription())
	in.ID = r.GetId()
	sub, err := s.svc.Update(ctx, in)
	s.record(ctx, "subscription.update", "subscription:"+r.GetId(), start, err, nil)
	if err != nil {
		return nil, err
	}
	return toProto(sub), nil
}

// DeleteSubscription implements SyncProvisioningService.
func (s *Server) DeleteSubscription(ctx context.Context, r *syncv1.DeleteSubscriptionRequest) (*syncv1.DeleteSubscriptionResponse, error) {
	start := time.Now()
	if err := s.allow(ctx, PermWrite); err != nil {
		return nil, err
	}
	err := s.svc.Delete(ctx, r.GetId())
	s.record(ctx, "subscription.delete", "subscription:"+r.GetId(), start, err, nil)
	if err != nil {
		return nil, err
	}
	return &syncv1.DeleteSubscriptionResponse{}, nil
}

// StartBatch implements SyncProvisioningService.
func (s *Server) StartBatch(ctx context.Context, r *syncv1.StartBatchRequest) (*syncv1.StartBatchResponse, error) {
	start := time.Now()
	if err := s.allow(ctx, PermWrite); err != nil {
		return nil, err
	}
	id, n, subs, err := s.svc.StartBatch(ctx, r.GetApp(), r.GetSubscriptionId(), provision.Filter{Org: r.GetOrg(), Role: r.GetRole(),
		RolesOnly: r.GetRolesOnly()})
	detail := map[string]string{"subscription": r.GetSubscriptionId(), "org": r.GetOrg(), "role": r.GetRole(), "batch": id}
	if r.GetRolesOnly() {
		detail["roles_only"] = "true"
	}
	s.record(ctx, "provision.batch", "app:"+r.GetApp(), start, err, detail)
	if err != nil {
		return nil, err
	}
	return &syncv1.StartBatchResponse{BatchId: id, Enqueued: int64(n), Subscriptions: subs}, nil
}

// RetryDeliveries implements SyncProvisioningService.
func (s *Server) RetryDeliveries(ctx context.Context, r *syncv1.RetryDeliveriesRequest) (*syncv1.RetryDeliveriesResponse, error) {
	start := time.Now()
	if err := s.allow(ctx, PermWrite); err != nil {
		return nil, err
	}
	n, err := s.svc.Retry(ctx, provision.DeliveryFilter{Subscription: r.GetSubscriptionId(), App: r.GetApp(), Seq: r.GetSeq()})
	s.record(ctx, "provision.retry", "app:"+r.GetApp(), start, err, map[string]string{"subscription": r.GetSubscriptionId()})
	if err != nil {
		return nil, err
	}
	return &syncv1.RetryDeliveriesResponse{Retried: n}, nil
}

// ListDeliveries implements SyncProvisioningService.
func (s *Server) ListDeliveries(ctx context.Context, r *syncv1.ListDeliveriesRequest) (*syncv1.ListDeliveriesResponse, error) {
	if err := s.allow(ctx, PermRead); err != nil {
		return nil, err
	}
	ds, next, err := s.svc.Store.ListDeliveries(ctx, provision.DeliveryFilter{Subscription: r.GetSubscriptionId(), App: r.GetApp(),
		Status: r.GetStatus()}, int(r.GetPageSize()), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &syncv1.ListDeliveriesResponse{NextPageToken: next}
	for _, d := range ds {
		pd := &syncv1.Delivery{Seq: d.Seq, SubscriptionId: d.Subscription, App: d.App, EventId: d.EventID, Kind: d.Kind,
			ObjectId: d.ObjectID, Op: d.Op, BatchId: d.BatchID, Status: d.Status, Attempts: int32(d.Attempts), LastError: d.LastError,
			CreateTime: timestamppb.New(d.CreatedAt), LatencyMs: d.LatencyMS}
		if d.Status == provision.Pending {
			pd.NextAttemptTime = timestamppb.New(d.NextAt)
		}
		if !d.DeliveredAt.IsZero() {
			pd.DeliverTime = timestamppb.New(d.DeliveredAt)
		}
		out.Deliveries = append(out.Deliveries, pd)
	}
	return out, nil
}

// GetDeliveryReport implements SyncProvisioningService.
func (s *Server) GetDeliveryReport(ctx context.Context, r *syncv1.GetDeliveryReportRequest) (*syncv1.DeliveryReport, error) {
	if err := s.allow(ctx, PermRead); err != nil {
		return nil, err
	}
	from, to, err := provision.ReportDays(r.GetFrom(), r.GetTo(), time.Now())
	if err != nil {
		return nil, err
	}
	rows, err := s.svc.Store.Report(ctx, r.GetApp(), from, to)
	if err != nil {
		return nil, err
	}
	out := &syncv1.DeliveryReport{}
	for _, row := range rows {
		out.Rows = append(out.Rows, &syncv1.DeliveryReportRow{Day: row.Day, App: row.App, Delivered: row.Delivered, Failed: row.Failed,
			Dead: row.Dead, Pending: row.Pending, AvgLatencyMs: row.AvgLatencyMS})
	}
	name := "deliveries-" + from.Format(time.DateOnly) + "-" + to.AddDate(0, 0, -1).Format(time.DateOnly)
	switch r.GetFormat() {
	case "":
	case "csv":
		out.Content, err = provision.ReportCSV(rows)
		out.ContentType, out.Filename = "text/csv; charset=utf-8", name+".csv"
	case "xlsx":
		out.Content, err = provision.ReportXLSX(rows)
		out.ContentType, out.Filename = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", name+".xlsx"
	default:
		return nil, apierr.New(apierr.InvalidArgument, provision.ReasonBadReport, "report format must be csv or xlsx")
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetProvisioningStatus implements SyncProvisioningService.
func (s *Server) GetProvisioningStatus(ctx context.Context, _ *syncv1.GetProvisioningStatusRequest) (*syncv1.ProvisioningStatus, error) {
	if err := s.allow(ctx, PermRead); err != nil {
		return nil, err
	}
	sts, err := s.svc.Status(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := &syncv1.ProvisioningStatus{}
	for _, st := range sts {
		sub := st.Subscription
		out.Subscriptions = append(out.Subscriptions, &syncv1.SubscriptionStatus{Id: sub.ID, App: sub.App, Name: sub.Name,
			Transport: sub.Transport, Strategy: sub.Strategy, Enabled: sub.Enabled, Pending: st.Pending, Dead: st.Dead,
			LagSeconds: st.Lag(now).Seconds(), LastError: st.LastError, InitialBatch: sub.InitialBatch, InitialPending: st.InitialPending})
	}
	return out, nil
}
