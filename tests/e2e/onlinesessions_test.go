package e2e

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"testing"

	"google.golang.org/grpc/codes"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// The live SSO sessions (TicketSessionsService) and "online now" from them,
// with the three administrators: the security auditor and the system
// administrator list every session, a unit administrator those of the
// people of their subtree (another branch's org is refused with a
// sentence); pages follow each other without repeats, over gRPC and REST.
// The audit component's OnlineNow lists the people of the live sessions
// (each once), for the auditor only; an ended session leaves it; asked
// for the audit log's view it answers from the logins.
func TestLiveSessionsAndOnlineNow(t *testing.T) {
	x := newEscalation(t)
	e := x.e
	h, ok := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	if !ok {
		t.Fatal("no ticket component in target all")
	}
	ctx := context.Background()
	people := map[string]string{x.bob: x.east1, x.carol: x.west, x.dave: x.east1}
	tgts := map[string]string{}
	for _, id := range []string{x.bob, x.carol, x.dave, x.dave} { // dave twice
		tgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: id, Login: id, OrgID: people[id], AuthLevel: 1,
			ClientIP: "192.0.2.10"})
		if err != nil {
			t.Fatal(err)
		}
		tgts[id] = tgt
	}
	c := ticketv1.NewTicketSessionsServiceClient(e.conn)
	// listAll pages through the sessions who may list, two at a time.
	listAll := func(who string, r *ticketv1.ListSessionsRequest) []string {
		t.Helper()
		var users []string
		seen := map[string]bool{}
		for pages := 0; ; pages++ {
			r.PageSize = 2
			res, err := c.ListSessions(x.as(who), r)
			if err != nil {
				t.Fatalf("%s lists sessions: %v", who, err)
			}
			for _, s := range res.GetSessions() {
				if seen[s.GetSession().GetId()] {
					t.Fatalf("%s: session %s on two pages", who, s.GetSession().GetId())
				}
				seen[s.GetSession().GetId()] = true
				if s.GetOrgId() != people[s.GetSession().GetUserId()] || s.GetSession().GetClientIp() != "192.0.2.10" {
					t.Errorf("%s: session %v", who, s)
				}
				users = append(users, s.GetSession().GetUserId())
			}
			if r.PageToken = res.GetNextPageToken(); r.PageToken == "" {
				break
			}
			if pages > 10 {
				t.Fatalf("%s: pages without end", who)
			}
		}
		sort.Strings(users)
		return users
	}
	want := func(ids ...string) []string { sort.Strings(ids); return ids }
	for _, who := range []string{"aud", "sys2", "admin"} {
		if got := listAll(who, &ticketv1.ListSessionsRequest{}); !slices.Equal(got, want(x.bob, x.carol, x.dave, x.dave)) {
			t.Errorf("%s lists %v", who, got)
		}
	}
	if got := listAll("unitA", &ticketv1.ListSessionsRequest{}); !slices.Equal(got, want(x.bob, x.dave, x.dave)) {
		t.Errorf("unit admin of east lists %v", got)
	}
	if got := listAll("sub", &ticketv1.ListSessionsRequest{OrgId: x.east1}); !slices.Equal(got, want(x.bob, x.dave, x.dave)) {
		t.Errorf("unit admin of east1 lists %v", got)
	}
	if got := listAll("aud", &ticketv1.ListSessionsRequest{OrgId: x.west}); !slices.Equal(got, want(x.carol)) {
		t.Errorf("auditor lists west: %v", got)
	}
	if got := listAll("aud", &ticketv1.ListSessionsRequest{UserId: x.dave}); !slices.Equal(got, want(x.dave, x.dave)) {
		t.Errorf("auditor lists dave's: %v", got)
	}
	_, err := c.ListSessions(x.as("unitA"), &ticketv1.ListSessionsRequest{OrgId: x.west})
	denied(t, "unit admin lists another branch", err, "outside them")
	// a person of another branch: refused, not an empty list (trial12 D7)
	_, err = c.ListSessions(x.as("unitA"), &ticketv1.ListSessionsRequest{UserId: x.carol})
	denied(t, "unit admin lists a person of another branch", err, "is not one of them")
	if got := listAll("unitA", &ticketv1.ListSessionsRequest{UserId: x.dave}); !slices.Equal(got, want(x.dave, x.dave)) {
		t.Errorf("unit admin of east lists dave's: %v", got)
	}
	_, err = c.ListSessions(ctx, &ticketv1.ListSessionsRequest{})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_TOKEN")
	_, err = c.ListSessions(x.as("aud"), &ticketv1.ListSessionsRequest{PageToken: "%%"})
	wantCode(t, err, codes.InvalidArgument, "INVALID_PAGE_TOKEN")

	// REST
	code, out, _ := e.rest(http.MethodGet, "/v1/ticket/sessions", x.asHeader("unitA"), nil)
	if code != http.StatusOK || len(out["sessions"].([]any)) != 3 {
		t.Fatalf("REST unit admin lists sessions: %d %v", code, out)
	}
	code, out, _ = e.rest(http.MethodGet, "/v1/ticket/sessions?page_size=1&user_id="+x.carol, x.asHeader("aud"), nil)
	if code != http.StatusOK || len(out["sessions"].([]any)) != 1 {
		t.Fatalf("REST auditor lists carol's sessions: %d %v", code, out)
	}
	code, out, _ = e.rest(http.MethodGet, "/v1/ticket/sessions?org_id="+x.west, x.asHeader("unitA"), nil)
	restDenied(t, "unit admin lists another branch", code, out, "outside them")
	if code, _, _ := e.rest(http.MethodGet, "/v1/ticket/sessions", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("REST sessions without a token: %d", code)
	}

	// Online now, from the sessions: whoever reads the audit log, in their
	// scope.
	an := auditv1.NewAuditAnalyticsServiceClient(e.conn)
	onlineAs := func(who string) []string {
		t.Helper()
		on, err := an.OnlineNow(x.as(who), &auditv1.OnlineNowRequest{})
		if err != nil || on.GetSource() != "ticket" {
			t.Fatalf("online now: %v %v", on, err)
		}
		var ids []string
		for _, p := range on.GetPeople() {
			if p.GetSince() == nil || p.GetOrg() != people[p.GetUserId()] {
				t.Errorf("online person %v", p)
			}
			ids = append(ids, p.GetUserId())
		}
		sort.Strings(ids)
		return ids
	}
	online := func() []string { t.Helper(); return onlineAs("aud") }
	if got := online(); !slices.Equal(got, want(x.bob, x.carol, x.dave)) {
		t.Fatalf("online now: %v", got)
	}
	on, err := an.OnlineNow(x.as("aud"), &auditv1.OnlineNowRequest{Limit: 1})
	if err != nil || len(on.GetPeople()) != 1 || !on.GetTruncated() {
		t.Fatalf("online now, limit 1: %v %v", on, err)
	}
	// the system administrators see everyone, a unit administrator of
	// east the people of east's subtree (bob and dave, not carol)
	for _, who := range []string{"admin", "sys2"} {
		if got := onlineAs(who); !slices.Equal(got, want(x.bob, x.carol, x.dave)) {
			t.Errorf("online now as %s: %v", who, got)
		}
	}
	if got := onlineAs("unitA"); !slices.Equal(got, want(x.bob, x.dave)) {
		t.Errorf("online now as the unit administrator of east: %v", got)
	}
	code, out, _ = e.rest(http.MethodGet, "/v1/audit/analytics/online", x.asHeader("aud"), nil)
	if code != http.StatusOK || out["source"] != "ticket" || len(out["people"].([]any)) != 3 {
		t.Fatalf("REST online now: %d %v", code, out)
	}
	if ended, err := h.Service.DestroySession(ctx, tgts[x.carol]); err != nil || !ended {
		t.Fatalf("end carol's session: %v %v", ended, err)
	}
	if got := online(); !slices.Equal(got, want(x.bob, x.dave)) {
		t.Fatalf("online now after carol left: %v", got)
	}
	on, err = an.OnlineNow(x.as("aud"), &auditv1.OnlineNowRequest{FromAuditLog: true})
	if err != nil || on.GetSource() != "logins" {
		t.Fatalf("online now from the audit log: %v %v", on, err)
	}
}
