package ctl

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
)

// syncCommands are the "sync" noun: the links and replica of a centre of a
// two-level deployment.
func syncCommands() map[string]command {
	return map[string]command{
		"status":  syncStatusCmd(),
		"skipped": syncSkippedCmd(),
		"resolve": syncResolveCmd(),
		"digest":  syncDigestCmd(),
	}
}

func syncStatusCmd() command {
	return verb("", "Shows this centre's settings and each link it applies: applied and pending changes, source state, last error.",
		nil, func(*app, *flag.FlagSet) prepared[*syncv1.SyncStatus] {
			return func([]string) (func(s *session) (*syncv1.SyncStatus, error), error) {
				return func(s *session) (*syncv1.SyncStatus, error) {
					return syncv1.NewSyncAdminServiceClient(s.conn).GetSyncStatus(s.ctx, &syncv1.GetSyncStatusRequest{})
				}, nil
			}
		}, func(tw *tabwriter.Writer, x *syncv1.SyncStatus) {
			if x.GetCentre() == "" {
				fmt.Fprintln(tw, "single centre (sync.centre is not set): no links")
				return
			}
			fmt.Fprintf(tw, "centre %s\tlevel %d\tparent %s\thome subtrees %s\n", x.GetCentre(), x.GetLevel(),
				dash(x.GetParent()), dash(strings.Join(x.GetHomeSubtrees(), ",")))
			fmt.Fprintln(tw, "PEER\tSTREAM\tAPPLIED SEQ\tPENDING\tAPPLIED\tSKIPPED\tOPEN CONFLICTS\tREPLAYED\tLAST APPLIED\tSOURCE\tERROR")
			for _, l := range x.GetLinks() {
				last := "-"
				if l.GetLastAppliedTime() != nil {
					last = l.GetLastAppliedTime().AsTime().Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", l.GetPeer(), l.GetStream(), l.GetAppliedSeq(),
					l.GetPending(), l.GetApplied(), l.GetSkipped(), l.GetOpenConflicts(), l.GetDuplicates(), last,
					dash(l.GetSourceState()), dash(l.GetError()))
			}
		})
}

func syncSkippedCmd() command {
	return listVerb("[--open]", syncMaxPage, func(_ *app, fs *flag.FlagSet) pageFetch[*syncv1.SkippedChange] {
		open := fs.Bool("open", false, "only the conflicts not resolved yet")
		return func(s *session, size int32, token string) ([]*syncv1.SkippedChange, string, error) {
			r, err := syncv1.NewSyncAdminServiceClient(s.conn).ListSkippedChanges(s.ctx,
				&syncv1.ListSkippedChangesRequest{PageSize: size, PageToken: token, OpenOnly: *open})
			return r.GetChanges(), r.GetNextPageToken(), err
		}
	}, func(items []*syncv1.SkippedChange, next string) proto.Message {
		return &syncv1.ListSkippedChangesResponse{Changes: items, NextPageToken: next}
	}, func(tw *tabwriter.Writer, items []*syncv1.SkippedChange) {
		fmt.Fprintln(tw, "TIME\tREASON\tORIGIN\tKIND\tOBJECT ID\tVERSION\tAPPLIED VERSION\tEVENT\tREFUSED OBJECT\tRESOLVED")
		for _, k := range items {
			resolved := "-"
			switch {
			case k.GetResolvedTime() != nil:
				resolved = k.GetResolvedTime().AsTime().Local().Format(time.DateTime) + " by " + k.GetResolvedByEventId()
			case k.GetReason() == "CONFLICT":
				resolved = "open"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", k.GetTime().AsTime().Local().Format(time.DateTime), k.GetReason(),
				k.GetOrigin(), k.GetKind(), k.GetObjectId(), k.GetVersion(), k.GetAppliedVersion(), k.GetEventId(),
				dash(k.GetObject()), resolved)
		}
	})
}

func syncResolveCmd() command {
	return verb("EVENT_ID [--object KEY]",
		"Marks the open conflicts of a skipped change resolved by hand (what it left out was mended another way, "+
			"or is no longer wanted): all of them, or the one of --object (as sync skipped lists it).",
		[]string{"EVENT_ID"}, func(_ *app, fs *flag.FlagSet) prepared[*syncv1.ResolveSkippedChangesResponse] {
			object := fs.String("object", "", "only the conflict of this object, as sync skipped shows it under REFUSED OBJECT "+
				"(e.g. user:ID, group:ID/member:ID)")
			return func(args []string) (func(s *session) (*syncv1.ResolveSkippedChangesResponse, error), error) {
				return func(s *session) (*syncv1.ResolveSkippedChangesResponse, error) {
					return syncv1.NewSyncAdminServiceClient(s.conn).ResolveSkippedChanges(s.ctx,
						&syncv1.ResolveSkippedChangesRequest{EventId: args[0], Object: *object})
				}, nil
			}
		}, func(tw *tabwriter.Writer, x *syncv1.ResolveSkippedChangesResponse) {
			fmt.Fprintf(tw, "RESOLVED\t%d\n", x.GetResolved())
		})
}

func syncDigestCmd() command {
	return verb("[--home CENTRE]... [--kind PREFIX]...",
		"Shows a SHA-256 per replica table over the objects homed at the centres given, of the kinds given; "+
			"equal digests at two centres mean equal data.",
		nil, func(_ *app, fs *flag.FlagSet) prepared[*syncv1.ReplicaDigest] {
			var homes, kinds verifierFlag
			fs.Var(&homes, "home", "home centre of the objects (repeatable; none: all)")
			fs.Var(&kinds, "kind", "kind prefix, e.g. identity.user or authz. (repeatable; none: all)")
			return func([]string) (func(s *session) (*syncv1.ReplicaDigest, error), error) {
				return func(s *session) (*syncv1.ReplicaDigest, error) {
					return syncv1.NewSyncAdminServiceClient(s.conn).GetReplicaDigest(s.ctx,
						&syncv1.GetReplicaDigestRequest{Homes: homes, Kinds: kinds})
				}, nil
			}
		}, func(tw *tabwriter.Writer, x *syncv1.ReplicaDigest) {
			fmt.Fprintln(tw, "TABLE\tROWS\tSHA-256")
			for _, d := range x.GetTables() {
				fmt.Fprintf(tw, "%s\t%d\t%s\n", d.GetTable(), d.GetRows(), d.GetSha256())
			}
		})
}

// dash shows an empty value as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
