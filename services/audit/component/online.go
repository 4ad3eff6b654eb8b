package component

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/grpcx"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/audit/analytics"
)

// ticketSessions is analytics.SessionSource over the ticket component's
// TicketSessionsService, asked with the calling administrator's token (the
// ticket component decides ticket.sessions read itself).
type ticketSessions struct {
	c ticketv1.TicketSessionsServiceClient
}

func newTicketSessions(conn grpc.ClientConnInterface) ticketSessions {
	return ticketSessions{c: ticketv1.NewTicketSessionsServiceClient(conn)}
}

// sessionPages bounds the pages one question reads (1,000 sessions each).
const sessionPages = 100

// Online implements analytics.SessionSource: the pages come newest first,
// so a person's first session is their latest.
func (t ticketSessions) Online(ctx context.Context, limit int) ([]analytics.LastSeen, bool, error) {
	if tok := grpcx.BearerToken(ctx); tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	seen := map[string]bool{}
	var out []analytics.LastSeen
	tok := ""
	for range sessionPages {
		res, err := t.c.ListSessions(ctx, &ticketv1.ListSessionsRequest{PageSize: 1000, PageToken: tok})
		switch status.Code(err) {
		case codes.OK:
		case codes.Unavailable, codes.Unimplemented, codes.DeadlineExceeded:
			return nil, false, fmt.Errorf("%w: %w", analytics.ErrNoSessions, err)
		default:
			return nil, false, err
		}
		for _, s := range res.GetSessions() {
			sess := s.GetSession()
			if seen[sess.GetUserId()] {
				continue
			}
			if len(out) == limit {
				return out, true, nil
			}
			seen[sess.GetUserId()] = true
			l := analytics.LastSeen{Subject: analytics.UserSubject(sess.GetUserId()), Org: s.GetOrgId(), ClientIP: sess.GetClientIp()}
			if sess.GetCreatedAt() != nil {
				l.Time = sess.GetCreatedAt().AsTime()
			}
			if ids := s.GetAppIds(); len(ids) > 0 {
				l.AppID = ids[0]
			}
			out = append(out, l)
		}
		if tok = res.GetNextPageToken(); tok == "" {
			return out, false, nil
		}
	}
	return out, true, nil
}
