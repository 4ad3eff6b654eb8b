package ctl

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// The live SSO sessions of the ticket component: "sessions list"
// (TicketSessionsService) and "sessions revoke" (TicketAdminService).

// sessionCommands are the verbs of the "sessions" noun.
func sessionCommands() map[string]command {
	return map[string]command{"list": sessionListCmd(), "revoke": sessionRevokeCmd()}
}

// sessionRevokeCmd ends a person's sessions (TicketAdminService.
// RevokeUserSessions, REST POST /v1/users/{user_id}/sessions:revoke): what
// an operator does for a lost laptop or a person who must sign in again,
// as Keycloak's "Sign out" of a user or Apereo CAS's SSO session
// deletion.
func sessionRevokeCmd() command {
	return command{
		usage: "USER_ID [--session ID]",
		help: "Ends the live single sign-on sessions of person USER_ID, or only the one --session names (see\n" +
			"\"sessions list --user USER_ID\"). The applications that got tickets in them receive the single-logout\n" +
			"request; the person signs in again. A person without a live session: 0 ended.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			sid := fs.String("session", "", "only the session `ID` (default: every session of the person)")
			return func(args []string) error {
				if err := wantArgs(args, "USER_ID"); err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					res, err := ticketv1.NewTicketAdminServiceClient(s.conn).RevokeUserSessions(s.ctx,
						&ticketv1.RevokeUserSessionsRequest{UserId: args[0], SessionId: *sid})
					if err != nil {
						return err
					}
					return a.output(res, func(tw *tabwriter.Writer) {
						fields(tw, "User", args[0], "Sessions ended", fmt.Sprint(res.GetEnded()))
					})
				})
			}
		},
	}
}

func sessionListCmd() command {
	return command{
		usage: "[--org ID] [--user ID] [--page-size N] [--page-token T] [--all]",
		help: "Lists the live single sign-on sessions, the latest started first (a unit administrator sees those\n" +
			"of the people of their org subtrees).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			org := fs.String("org", "", "only the sessions of people in org `ID` or below it")
			user := fs.String("user", "", "only the sessions of person `ID`")
			lo := addListFlags(fs, ticket.MaxSessionPage)
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if err := lo.check(); err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					c := ticketv1.NewTicketSessionsServiceClient(s.conn)
					list, next, err := paginate(lo, func(tok string) ([]*ticketv1.LiveSession, string, error) {
						res, err := c.ListSessions(s.ctx, &ticketv1.ListSessionsRequest{OrgId: *org, UserId: *user,
							PageSize: int32(lo.pageSize), PageToken: tok})
						return res.GetSessions(), res.GetNextPageToken(), err
					})
					if err != nil {
						return err
					}
					a.moreHint(next)
					return a.output(&ticketv1.ListSessionsResponse{Sessions: list, NextPageToken: next}, func(tw *tabwriter.Writer) {
						// VIA: the peer centre whose sign-in opened the session
						// (sign-in across centres), "-" for a sign-in here.
						row(tw, "SESSION", "USER", "LOGIN", "ORG", "STARTED", "LAST USED", "EXPIRES", "CLIENT IP", "VIA", "APPS")
						for _, x := range list {
							se := x.GetSession()
							row(tw, se.GetId(), se.GetUserId(), se.GetLogin(), x.GetOrgId(), ts(se.GetCreatedAt()), ts(se.GetLastUsedAt()),
								ts(se.GetExpiresAt()), se.GetClientIp(), se.GetPeer(), strings.Join(x.GetAppIds(), ","))
						}
					})
				})
			}
		},
	}
}
