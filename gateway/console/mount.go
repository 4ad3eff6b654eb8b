package console

import (
	"go.uber.org/zap"
	"google.golang.org/grpc"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// OnEdge is the console the edge mounts under Prefix, on the components
// registered behind it: client reaches one by name (in-process or through
// etcd), has says whether one is registered. Identity is needed (nil
// without it: nothing is mounted); without audit or authz their pages say
// they are unavailable. The edge knows only this function: which services
// the console calls is the console's business (review rr29 A3).
func OnEdge(log *zap.Logger, client func(name string) (grpc.ClientConnInterface, error), has func(name string) bool) (*Handler, error) {
	if !has("identity") {
		return nil, nil
	}
	ic, err := client("identity")
	if err != nil {
		return nil, err
	}
	o := Options{Admin: identityv1.NewAdminServiceClient(ic), Log: log, Prefix: Prefix}
	if has("audit") {
		ac, err := client("audit")
		if err != nil {
			return nil, err
		}
		o.AuditQuery, o.AuditLog = auditv1.NewAuditQueryServiceClient(ac), auditv1.NewAuditLogServiceClient(ac)
		o.AuditReport = auditv1.NewAuditReportServiceClient(ac)
	}
	if has("authz") {
		zc, err := client("authz")
		if err != nil {
			return nil, err
		}
		o.Authz = authzv1.NewAuthzAdminServiceClient(zc)
	}
	if has("ticket") {
		tc, err := client("ticket")
		if err != nil {
			return nil, err
		}
		o.Registry = ticketv1.NewServiceRegistryServiceClient(tc)
	}
	return New(o), nil
}
