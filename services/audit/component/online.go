package component

import (
	"context"

	"google.golang.org/grpc"

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
	ctx = asCaller(ctx)
	seen := map[string]bool{}
	var out []analytics.LastSeen
	tok := ""
	for range sessionPages {
		res, err := t.c.ListSessions(ctx, &ticketv1.ListSessionsRequest{PageSize: 1000, PageToken: tok})
		if err != nil {
			return nil, false, unreachable(err, analytics.ErrNoSessions)
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
