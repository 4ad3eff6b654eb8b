package ctl

import (
	"flag"
	"text/tabwriter"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
)

// syncSubscriptionUpdateCmd edits a provisioning subscription: it reads the
// subscription, changes what the flags given say and writes it back
// (UpdateSubscription, REST PUT /v1/sync/subscriptions/{id}). The engine
// then delivers at once to the business system what entered the selection
// and deletes (or disables, on_leave) what left it.
func syncSubscriptionUpdateCmd() command {
	return verb("ID [--name NAME] [--org ORG]... [--role ROLE]... [--group GROUP]... [--linked=true|false] "+
		"[--transport webhook|scim|ldap|soap] [--endpoint URL] [--setting KEY=VALUE]... [--on-leave delete|disable] "+
		"[--strategy immediate|batch] [--batch-every DURATION] [--batch-at HH:MM] [--time-zone ZONE] [--enabled=true|false] "+
		"[--deliver-roles=true|false] [--secret-stdin]",
		"Only what the flags name changes. --org, --role and --group replace that list of the selection (an empty\n"+
			"value, --org '', empties it); --setting KEY=VALUE sets one transport setting and KEY= removes it;\n"+
			"--on-leave says what the business system does with people who leave the selection: delete (the\n"+
			"default) or disable (SCIM active=false, webhook op \"disable\"; not LDAP). A new secret is read from\n"+
			"standard input with --secret-stdin; without it the stored secret is kept. --deliver-roles=true delivers\n"+
			"the application's roles and the selected people again with theirs; =false removes the roles there.",
		[]string{"ID"}, func(a *app, fs *flag.FlagSet) prepared[*syncv1.Subscription] {
			var orgs, roles, groups verifierFlag
			settings := settingFlag{}
			name := fs.String("name", "", "the subscription's name")
			fs.Var(&orgs, "org", "org subtree to deliver (repeatable; replaces the orgs)")
			fs.Var(&roles, "role", "role whose holders to deliver (repeatable; replaces the roles)")
			fs.Var(&groups, "group", "group whose members to deliver (repeatable; replaces the groups)")
			linked := fs.Bool("linked", false, "deliver the people linked to the application")
			transport := fs.String("transport", "", "webhook, scim, ldap or soap")
			endpoint := fs.String("endpoint", "", "webhook URL, SCIM base URL (https://) or directory URL (ldaps://); plain http:// and ldap:// only to this machine")
			fs.Var(settings, "setting", "transport setting KEY=VALUE (repeatable; KEY= removes it)")
			onLeave := fs.String("on-leave", "", "delete or disable the people who leave the selection")
			strategy := fs.String("strategy", "", "immediate (each change) or batch (batches only)")
			every := fs.Duration("batch-every", 0, "deliver the whole selection this often (0: never)")
			at := fs.String("batch-at", "", `deliver the whole selection at this time of day, HH:MM (--batch-every in whole days; "": the period alone)`)
			zone := fs.String("time-zone", "", `the time zone of --batch-at, such as Asia/Shanghai ("": UTC)`)
			enabled := fs.Bool("enabled", true, "deliver (false: pause the subscription)")
			deliverRoles := fs.Bool("deliver-roles", true, "deliver the application's roles and each person's roles of it")
			secretIn := fs.Bool("secret-stdin", false, "read a new secret from standard input")
			return func(args []string) (func(s *session) (*syncv1.Subscription, error), error) {
				id := args[0]
				set := map[string]bool{}
				fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
				if len(set) == 0 {
					return nil, usagef("nothing to change: give at least one flag")
				}
				var secret string
				if *secretIn {
					sec, err := a.readSecretLine("the subscription's new secret")
					if err != nil {
						return nil, err
					}
					secret = sec
				}
				if set["on-leave"] {
					settings["on_leave"] = *onLeave
				}
				return func(s *session) (*syncv1.Subscription, error) {
					// The fields given replace those read; the rest is sent
					// back as it is (an empty secret keeps the stored one).
					cur, err := provClient(s).GetSubscription(s.ctx, &syncv1.GetSubscriptionRequest{Id: id})
					if err != nil {
						return nil, err
					}
					sub := proto.Clone(cur).(*syncv1.Subscription)
					sel := sub.GetSelection()
					if sel == nil {
						sel = &syncv1.Selection{}
						sub.Selection = sel
					}
					if set["name"] {
						sub.Name = *name
					}
					if set["org"] {
						sel.Orgs = nonEmpty(orgs)
					}
					if set["role"] {
						sel.Roles = nonEmpty(roles)
					}
					if set["group"] {
						sel.Groups = nonEmpty(groups)
					}
					if set["linked"] {
						sel.Linked = *linked
					}
					if set["transport"] {
						sub.Transport = *transport
					}
					if set["endpoint"] {
						sub.Endpoint = *endpoint
					}
					if len(settings) > 0 && sub.Settings == nil {
						sub.Settings = map[string]string{}
					}
					for k, v := range settings {
						if v == "" {
							delete(sub.Settings, k)
						} else {
							sub.Settings[k] = v
						}
					}
					if set["strategy"] {
						sub.Strategy = *strategy
					}
					if set["batch-every"] {
						sub.BatchEverySeconds = int64(every.Seconds())
					}
					if set["batch-at"] {
						sub.BatchAt = *at
						if *at == "" {
							sub.BatchTimeZone = ""
						}
					}
					if set["time-zone"] {
						sub.BatchTimeZone = *zone
					}
					if set["enabled"] {
						sub.Enabled = *enabled
					}
					if set["deliver-roles"] {
						sub.DeliverRoles = *deliverRoles
					}
					sub.Secret = secret
					return provClient(s).UpdateSubscription(s.ctx, &syncv1.UpdateSubscriptionRequest{Id: id, Subscription: sub})
				}, nil
			}
		}, func(tw *tabwriter.Writer, x *syncv1.Subscription) {
			subscriptionFields(tw, x)
			if v := x.GetSettings()["on_leave"]; v != "" {
				fields(tw, "on leave", v)
			}
		})
}

// nonEmpty drops empty values (an empty --org value empties the list).
func nonEmpty(vs []string) []string {
	out := []string{}
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
