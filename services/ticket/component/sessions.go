package component

import (
	"context"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/proto/gen/openapi"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// ticketOpenAPI is one document for ticket.proto and sessions.proto.
var ticketOpenAPI = module.MustMergeOpenAPI(openapi.Ticket, openapi.TicketSessions)

// sessionsREST registers the session listing (GET /v1/ticket/sessions).
func sessionsREST(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	return ticketv1.RegisterTicketSessionsServiceHandlerClient(ctx, mux, ticketv1.NewTicketSessionsServiceClient(conn))
}
