package component

import (
	"context"
	"fmt"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/proto/gen/openapi"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/ldap"
	"github.com/uias/uias/services/sync/provision/provserver"
	"github.com/uias/uias/services/sync/provision/scim"
	"github.com/uias/uias/services/sync/provision/soap"
	"github.com/uias/uias/services/sync/provision/webhook"
	"github.com/uias/uias/services/sync/sqlstore"
)

// syncOpenAPI is the component's one document: sync.proto and
// provision.proto.
var syncOpenAPI = module.MustMergeOpenAPI(openapi.Sync, openapi.SyncProvision)

func provisionREST(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	return syncv1.RegisterSyncProvisioningServiceHandlerClient(ctx, mux, syncv1.NewSyncProvisioningServiceClient(conn))
}

// Transports are the provisioning transports by kind.
var Transports = map[string]provision.Dialer{
	provision.Webhook: webhook.New,
	provision.SCIM:    scim.New,
	provision.LDAP:    ldap.New,
	provision.SOAP:    soap.New,
}

// Provisioning is the started provisioning part of the component.
type Provisioning struct {
	Store  *sqlstore.Provision
	Engine *provision.Engine // nil when sync.provision.enabled is false
	server *provserver.Server
}

func startProvision(env *module.Env, cfg *Config, db *store.DB, relay *events.Relay, idc grpc.ClientConnInterface) (*Provisioning, error) {
	pc := cfg.Provision
	ring, err := crypto.LoadRing(pc.RingSource(env.Config))
	if err != nil {
		return nil, fmt.Errorf("sync provisioning: key ring (the deployment's, as identity reads it, or sync.provision.key_file): %w", err)
	}
	box, err := ring.PurposeSealer("sync provisioning secrets")
	if err != nil {
		return nil, fmt.Errorf("sync provisioning: key ring: %w", err)
	}
	st := sqlstore.NewProvision(db, box)
	_, js, err := env.NATS()
	if err != nil {
		return nil, err
	}
	log := env.Log.Named("provision")
	publish := auditPublisher(db, relay, log)
	p := &Provisioning{Store: st}
	if pc.Enabled {
		auditor := audit.NewBuilder("sync", nil)
		p.Engine = provision.New(provision.Options{Store: st, JS: js, Dial: Transports, Logger: log, Metrics: env.Metrics,
			Timeout: pc.Timeout, RetryFirst: pc.RetryFirst, RetryMax: pc.RetryMax, MaxAttempts: pc.MaxAttempts,
			DeadLetterRetry: pc.DeadLetterRetry,
			Views:           identityViews(identityv1.NewViewServiceClient(idc)),
			Alert: func(ctx context.Context, s *provision.Subscription, d provision.Delivery) {
				log.Error("provisioning: delivery dead-lettered", zap.String("subscription", s.ID), zap.String("app", s.App),
					zap.Int64("seq", d.Seq), zap.Int("attempts", d.Attempts), zap.String("error", d.LastError))
				publish(ctx, auditor.Event(ctx, audit.Action{API: "provision.dead_letter", Subject: "subscription:" + s.ID,
					Result: audit.ResultFailure, Reason: "DEAD_LETTER", Start: d.CreatedAt, Detail: map[string]string{
						"app": s.App, "kind": d.Kind, "object": d.ObjectID, "seq": fmt.Sprint(d.Seq),
						"attempts": fmt.Sprint(d.Attempts), "error": d.LastError}}))
			}})
		env.Go(p.Engine.Run)
	}
	var authzc grpc.ClientConnInterface
	if c, err := env.Client("authz"); err == nil {
		authzc = c
	}
	views := identityViews(identityv1.NewViewServiceClient(idc))
	svc := &provision.Service{Store: st, Engine: p.Engine, AppExists: func(ctx context.Context, id string) (bool, error) {
		v, err := views(ctx, "app", []string{id})
		return len(v) == 1, err
	}}
	p.server = provserver.New(svc, adminauth.New(idc, authzc), publish)
	return p, nil
}

// identityViews reads objects by id from identity's ViewService (the
// objects of an import).
func identityViews(c identityv1.ViewServiceClient) func(ctx context.Context, entity string, ids []string) ([]provision.View, error) {
	return func(ctx context.Context, entity string, ids []string) ([]provision.View, error) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		res, err := c.GetViews(cctx, &identityv1.GetViewsRequest{Entity: entity, Ids: ids})
		if err != nil {
			return nil, err
		}
		out := make([]provision.View, len(res.GetViews()))
		for i, v := range res.GetViews() {
			out[i] = provision.View{ID: v.GetId(), Data: v.GetData()}
		}
		return out, nil
	}
}

// auditPublisher keeps audit records in sync's events outbox (in db),
// whose relay sends them to AUDIT: kept while NATS is down; a failure to
// keep one is logged (the change it records is made).
func auditPublisher(db *store.DB, relay *events.Relay, log *zap.Logger) func(ctx context.Context, ev events.Event) {
	return func(ctx context.Context, ev events.Event) {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := events.AddAllToOutbox(pctx, db, db, []events.Event{ev}); err != nil {
			log.Error("audit event not kept", zap.String("api", ev.Type), zap.Error(err))
			return
		}
		relay.Kick()
	}
}
