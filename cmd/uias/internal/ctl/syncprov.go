package ctl

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	"github.com/uias/uias/services/sync/provision/soap"
)

// Provisioning verbs of the "sync" noun: subscriptions of business systems,
// batches and resyncs, dead letters, deliveries and their reports.
func syncProvisionCommands(m map[string]command) map[string]command {
	m["subscribe"] = syncSubscribeCmd()
	m["subscriptions"] = syncSubscriptionsCmd()
	m["unsubscribe"] = syncUnsubscribeCmd()
	m["subscription-update"] = syncSubscriptionUpdateCmd()
	m["resync"] = syncBatchCmd(true)
	m["batch"] = syncBatchCmd(false)
	m["retry"] = syncRetryCmd()
	m["deliveries"] = syncDeliveriesCmd()
	m["report"] = syncReportCmd()
	m["wsdl"] = syncWSDLCmd()
	m["status"] = withSubscriptionStatus(m["status"])
	return m
}

func provClient(s *session) syncv1.SyncProvisioningServiceClient {
	return syncv1.NewSyncProvisioningServiceClient(s.conn)
}

type settingFlag map[string]string

func (f settingFlag) String() string { return fmt.Sprint(map[string]string(f)) }
func (f settingFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	f[k] = v
	return nil
}

func syncSubscribeCmd() command {
	return verb("--app APP --name NAME --transport webhook|scim|ldap|soap --endpoint URL [--org ORG]... [--role ROLE]... "+
		"[--group GROUP]... [--linked] [--strategy immediate|batch] [--batch-every DURATION] [--batch-at HH:MM [--time-zone ZONE]] "+
		"[--setting KEY=VALUE]... [--deliver-roles] "+
		"[--secret-stdin] [--disabled]",
		"Subscribes an application to a selection (people inside the org subtrees, holding the roles, members of the\n"+
			"groups, or linked to the application) delivered through a transport. The secret (webhook signing key, SCIM\n"+
			"bearer token, LDAP bind password, SOAP shared secret or Basic password) is read from standard input with\n"+
			"--secret-stdin; it is stored encrypted and never shown. LDAP takes --setting base_dn=... and --setting\n"+
			"bind_dn=... (Active Directory: --setting profile=ad; ca_file=PEM, start_tls=true); SOAP takes --setting\n"+
			"auth=header|basic (secret_header=NAME, username=NAME) and `uias ctl sync wsdl` prints its WSDL.\n"+
			"--deliver-roles delivers the application's roles too (code, name, permissions, holders) and each person's\n"+
			"roles of the application.",
		nil, func(a *app, fs *flag.FlagSet) prepared[*syncv1.Subscription] {
			var orgs, roles, groups verifierFlag
			settings := settingFlag{}
			appID := fs.String("app", "", "the subscribing application's id")
			name := fs.String("name", "", "a name for the subscription")
			transport := fs.String("transport", "", "webhook, scim, ldap or soap")
			endpoint := fs.String("endpoint", "", "webhook URL, SCIM base URL, SOAP endpoint (https://) or directory URL (ldaps://); plain http:// and ldap:// only to this machine")
			fs.Var(&orgs, "org", "org subtree to deliver (repeatable)")
			fs.Var(&roles, "role", "role whose holders to deliver (repeatable)")
			fs.Var(&groups, "group", "group whose members to deliver (repeatable)")
			linked := fs.Bool("linked", false, "deliver the people linked to the application")
			strategy := fs.String("strategy", "immediate", "immediate (each change) or batch (batches only)")
			every := fs.Duration("batch-every", 0, "deliver the whole selection this often (0: never)")
			at := fs.String("batch-at", "", "deliver the whole selection at this time of day, HH:MM (--batch-every in whole days, 0: daily)")
			zone := fs.String("time-zone", "", "the time zone of --batch-at, such as Asia/Shanghai (\"\": UTC)")
			fs.Var(settings, "setting", "transport setting KEY=VALUE (repeatable)")
			secretIn := fs.Bool("secret-stdin", false, "read the secret from standard input")
			disabled := fs.Bool("disabled", false, "create it disabled")
			deliverRoles := fs.Bool("deliver-roles", false, "deliver the application's roles and each person's roles of it")
			return func([]string) (func(s *session) (*syncv1.Subscription, error), error) {
				if *appID == "" || *name == "" || *transport == "" || *endpoint == "" {
					return nil, usagef("--app, --name, --transport and --endpoint are required")
				}
				sub := &syncv1.Subscription{App: *appID, Name: *name, Transport: *transport, Endpoint: *endpoint,
					Selection: &syncv1.Selection{Orgs: orgs, Roles: roles, Groups: groups, Linked: *linked},
					Strategy:  *strategy, BatchEverySeconds: int64(every.Seconds()), Enabled: !*disabled, Settings: settings,
					BatchAt: *at, BatchTimeZone: *zone, DeliverRoles: *deliverRoles}
				if *secretIn {
					sec, err := a.readSecretLine("the subscription's secret")
					if err != nil {
						return nil, err
					}
					sub.Secret = sec
				}
				return func(s *session) (*syncv1.Subscription, error) {
					return provClient(s).CreateSubscription(s.ctx, &syncv1.CreateSubscriptionRequest{Subscription: sub})
				}, nil
			}
		}, func(tw *tabwriter.Writer, x *syncv1.Subscription) { subscriptionFields(tw, x) })
}

func subscriptionFields(tw *tabwriter.Writer, x *syncv1.Subscription) {
	sel := x.GetSelection()
	var parts []string
	if len(sel.GetOrgs()) > 0 {
		parts = append(parts, "orgs "+strings.Join(sel.GetOrgs(), ","))
	}
	if len(sel.GetRoles()) > 0 {
		parts = append(parts, "roles "+strings.Join(sel.GetRoles(), ","))
	}
	if len(sel.GetGroups()) > 0 {
		parts = append(parts, "groups "+strings.Join(sel.GetGroups(), ","))
	}
	if sel.GetLinked() {
		parts = append(parts, "linked people")
	}
	every := ""
	if x.GetBatchEverySeconds() > 0 {
		every = (time.Duration(x.GetBatchEverySeconds()) * time.Second).String()
	}
	fields(tw, "id", x.GetId(), "app", x.GetApp(), "name", x.GetName(), "selection", strings.Join(parts, "; "),
		"transport", x.GetTransport(), "endpoint", x.GetEndpoint(), "secret", map[bool]string{true: "set", false: ""}[x.GetHasSecret()],
		"strategy", x.GetStrategy(), "batch every", every, "batch at", batchAt(x), "enabled", strconv.FormatBool(x.GetEnabled()),
		"last batch", ts(x.GetLastBatchTime()), "initial batch", x.GetInitialBatch(),
		"deliver roles", strconv.FormatBool(x.GetDeliverRoles()))
}

// batchAt is the time of day of a subscription's batches with its zone.
func batchAt(x *syncv1.Subscription) string {
	if x.GetBatchAt() == "" {
		return ""
	}
	return x.GetBatchAt() + " " + cmp.Or(x.GetBatchTimeZone(), "UTC")
}

func syncSubscriptionsCmd() command {
	return verb("[--app APP]", "Lists the provisioning subscriptions (of one application).",
		nil, func(_ *app, fs *flag.FlagSet) prepared[*syncv1.ListSubscriptionsResponse] {
			appID := fs.String("app", "", "only this application's")
			return func([]string) (func(s *session) (*syncv1.ListSubscriptionsResponse, error), error) {
				return func(s *session) (*syncv1.ListSubscriptionsResponse, error) {
					return provClient(s).ListSubscriptions(s.ctx, &syncv1.ListSubscriptionsRequest{App: *appID})
				}, nil
			}
		}, func(tw *tabwriter.Writer, x *syncv1.ListSubscriptionsResponse) {
			fmt.Fprintln(tw, "ID\tAPP\tNAME\tTRANSPORT\tSTRATEGY\tENABLED\tENDPOINT")
			for _, s := range x.GetSubscriptions() {
				row(tw, s.GetId(), s.GetApp(), s.GetName(), s.GetTransport(), s.GetStrategy(), strconv.FormatBool(s.GetEnabled()), s.GetEndpoint())
			}
		})
}

func syncUnsubscribeCmd() command {
	return idVerb(func(s *session, id string) (*syncv1.DeleteSubscriptionResponse, error) {
		return provClient(s).DeleteSubscription(s.ctx, &syncv1.DeleteSubscriptionRequest{Id: id})
	}, func(tw *tabwriter.Writer, _ *syncv1.DeleteSubscriptionResponse) { fmt.Fprintln(tw, "removed") })
}

func syncBatchCmd(resync bool) command {
	usage, help := "--app APP [--org ORG] [--role ROLE] [--roles] [--subscription ID]",
		"Delivers now the people (inside --org's subtree, holding --role), orgs and groups of the selection of every\n"+
			"subscription of --app (or of one --subscription), whatever was delivered before. With --roles: the\n"+
			"application's roles (only --role), each with the people who hold it, to the subscriptions that deliver roles."
	if resync {
		usage = "--app APP [--org ORG] [--subscription ID]"
		help = "Resyncs after the fact: delivers again the whole selection of every subscription of --app (or of one\n" +
			"--subscription), or only what lies inside --org's subtree."
	}
	return verb(usage, help, nil, func(_ *app, fs *flag.FlagSet) prepared[*syncv1.StartBatchResponse] {
		appID := fs.String("app", "", "the application")
		sub := fs.String("subscription", "", "one subscription")
		org := fs.String("org", "", "only inside this org's subtree")
		role, roles := new(string), new(bool)
		if !resync {
			role = fs.String("role", "", "only the people holding this role (with --roles: only this role)")
			roles = fs.Bool("roles", false, "the application's roles and their holders, not the people, orgs and groups")
		}
		return func([]string) (func(s *session) (*syncv1.StartBatchResponse, error), error) {
			if *appID == "" && *sub == "" {
				return nil, usagef("--app or --subscription is required")
			}
			if *roles && *org != "" {
				return nil, usagef("--roles is not narrowed by --org (a role's members are all the selected people who hold it)")
			}
			return func(s *session) (*syncv1.StartBatchResponse, error) {
				return provClient(s).StartBatch(s.ctx, &syncv1.StartBatchRequest{App: *appID, SubscriptionId: *sub, Org: *org, Role: *role,
					RolesOnly: *roles})
			}, nil
		}
	}, func(tw *tabwriter.Writer, x *syncv1.StartBatchResponse) {
		fields(tw, "batch", x.GetBatchId(), "deliveries", strconv.FormatInt(x.GetEnqueued(), 10),
			"subscriptions", strings.Join(x.GetSubscriptions(), ","))
	})
}

func syncRetryCmd() command {
	return verb("[--app APP] [--subscription ID] [--seq N]",
		"Puts dead letters (deliveries given up after the last retry) back in their queues: all, those of an\n"+
			"application or subscription, or one delivery.",
		nil, func(_ *app, fs *flag.FlagSet) prepared[*syncv1.RetryDeliveriesResponse] {
			appID := fs.String("app", "", "the application's")
			sub := fs.String("subscription", "", "the subscription's")
			seq := fs.Int64("seq", 0, "one delivery")
			return func([]string) (func(s *session) (*syncv1.RetryDeliveriesResponse, error), error) {
				return func(s *session) (*syncv1.RetryDeliveriesResponse, error) {
					return provClient(s).RetryDeliveries(s.ctx, &syncv1.RetryDeliveriesRequest{App: *appID, SubscriptionId: *sub, Seq: *seq})
				}, nil
			}
		}, func(tw *tabwriter.Writer, x *syncv1.RetryDeliveriesResponse) {
			fields(tw, "retried", strconv.FormatInt(x.GetRetried(), 10))
		})
}

func syncDeliveriesCmd() command {
	return listVerb("[--app APP] [--subscription ID] [--status pending|delivered|dead]", syncMaxPage,
		func(_ *app, fs *flag.FlagSet) pageFetch[*syncv1.Delivery] {
			appID := fs.String("app", "", "the application's")
			sub := fs.String("subscription", "", "the subscription's")
			status := fs.String("status", "", "pending, delivered or dead")
			return func(s *session, size int32, token string) ([]*syncv1.Delivery, string, error) {
				r, err := provClient(s).ListDeliveries(s.ctx, &syncv1.ListDeliveriesRequest{App: *appID, SubscriptionId: *sub,
					Status: *status, PageSize: size, PageToken: token})
				return r.GetDeliveries(), r.GetNextPageToken(), err
			}
		}, func(items []*syncv1.Delivery, next string) proto.Message {
			return &syncv1.ListDeliveriesResponse{Deliveries: items, NextPageToken: next}
		}, func(tw *tabwriter.Writer, items []*syncv1.Delivery) {
			fmt.Fprintln(tw, "SEQ\tCREATED\tAPP\tSUBSCRIPTION\tKIND\tOBJECT\tOP\tSTATUS\tATTEMPTS\tLATENCY MS\tLAST ERROR")
			for _, d := range items {
				row(tw, strconv.FormatInt(d.GetSeq(), 10), ts(d.GetCreateTime()), d.GetApp(), d.GetSubscriptionId(), d.GetKind(),
					d.GetObjectId(), d.GetOp(), d.GetStatus(), strconv.Itoa(int(d.GetAttempts())), strconv.FormatInt(d.GetLatencyMs(), 10),
					d.GetLastError())
			}
		})
}

func syncReportCmd() command {
	return command{
		usage: "[--app APP] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--format csv|xlsx --out FILE]",
		help: "Counts deliveries per application per day (UTC; default the last 30 days): delivered, failed attempts,\n" +
			"dead letters, pending, average latency. --format csv|xlsx writes the report to --out (\"-\": standard output).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			appID := fs.String("app", "", "one application")
			from := fs.String("from", "", "first day")
			to := fs.String("to", "", "last day")
			format := fs.String("format", "", "csv or xlsx")
			out := fs.String("out", "", "file to write the csv or xlsx report to")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if (*format == "") != (*out == "") {
					return usagef("--format and --out go together")
				}
				return a.withSession(func(s *session) error {
					r, err := provClient(s).GetDeliveryReport(s.ctx, &syncv1.GetDeliveryReportRequest{App: *appID, From: *from, To: *to,
						Format: *format})
					if err != nil {
						return err
					}
					if *out != "" {
						if *out == "-" {
							_, err := a.stdout.Write(r.GetContent())
							return err
						}
						if err := os.WriteFile(*out, r.GetContent(), 0o600); err != nil {
							return err
						}
						fmt.Fprintf(a.stderr, "wrote %s (%d rows)\n", filepath.Base(*out), len(r.GetRows()))
						return nil
					}
					r.Content = nil
					return a.output(r, func(tw *tabwriter.Writer) {
						fmt.Fprintln(tw, "DAY\tAPP\tDELIVERED\tFAILED ATTEMPTS\tDEAD\tPENDING\tAVG LATENCY MS")
						for _, x := range r.GetRows() {
							row(tw, x.GetDay(), x.GetApp(), strconv.FormatInt(x.GetDelivered(), 10), strconv.FormatInt(x.GetFailed(), 10),
								strconv.FormatInt(x.GetDead(), 10), strconv.FormatInt(x.GetPending(), 10), strconv.FormatInt(x.GetAvgLatencyMs(), 10))
						}
					})
				})
			}
		},
	}
}

// initialState says how far the subscription's initial delivery is.
func initialState(s *syncv1.SubscriptionStatus) string {
	switch {
	case s.GetInitialBatch() == "" && s.GetEnabled():
		return "to enqueue"
	case s.GetInitialBatch() == "", s.GetInitialBatch() == "before":
		return "-"
	case s.GetInitialPending() > 0:
		return strconv.FormatInt(s.GetInitialPending(), 10) + " waiting"
	}
	return "done"
}

// withSubscriptionStatus runs base (sync status) and then shows each
// provisioning subscription's queue and lag (-o json: a second document).
func withSubscriptionStatus(base command) command {
	c := base
	c.help = base.help + "\nThen each provisioning subscription: deliveries waiting, their lag, dead letters, last error."
	c.setup = func(a *app, fs *flag.FlagSet) func([]string) error {
		run := base.setup(a, fs)
		return func(args []string) error {
			if err := run(args); err != nil {
				return err
			}
			return sessionCall(a, func(s *session) (*syncv1.ProvisioningStatus, error) {
				return provClient(s).GetProvisioningStatus(s.ctx, &syncv1.GetProvisioningStatusRequest{})
			}, func(tw *tabwriter.Writer, x *syncv1.ProvisioningStatus) {
				fmt.Fprintln(tw, "\nSUBSCRIPTION\tAPP\tTRANSPORT\tSTRATEGY\tENABLED\tPENDING\tLAG\tDEAD\tINITIAL\tLAST ERROR")
				for _, s := range x.GetSubscriptions() {
					lag := (time.Duration(s.GetLagSeconds()*1000) * time.Millisecond).String()
					row(tw, s.GetId()+" ("+s.GetName()+")", s.GetApp(), s.GetTransport(), s.GetStrategy(), strconv.FormatBool(s.GetEnabled()),
						strconv.FormatInt(s.GetPending(), 10), lag, strconv.FormatInt(s.GetDead(), 10), initialState(s), s.GetLastError())
				}
			})
		}
	}
	return c
}

// syncWSDLCmd prints the WSDL of the soap transport's operations, for the
// developers of a business system that receives them (no server asked).
func syncWSDLCmd() command {
	return command{usage: "[--endpoint URL]",
		help: "Prints the WSDL of the operations the soap transport posts (syncUser, deleteUser, syncOrg, deleteOrg,\n" +
			"syncGroup, deleteGroup, syncRole, deleteRole), with --endpoint as the service's address, for the developers of\n" +
			"the business system that implements them.",
		setup: func(a *app, fs *flag.FlagSet) func(args []string) error {
			endpoint := fs.String("endpoint", "", "the business system's SOAP endpoint (default: a placeholder)")
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				_, err := fmt.Fprint(a.stdout, soap.WSDL(*endpoint))
				return err
			}
		}}
}
