package ctl

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
)

// authzCommands are the "authz" noun: the authorization model (resources,
// roles, grants, exclusive pairs) and its queries, as an administrator.
func authzCommands() map[string]command {
	return map[string]command{
		"check":           authzCheckCmd(false),
		"explain":         authzCheckCmd(true),
		"permissions":     authzPermissionsCmd(),
		"subjects":        authzSubjectsCmd(),
		"resource-put":    authzResourcePutCmd(),
		"resources":       authzSimple("--app APP", "Lists the resources of an application.", []string{"app"}, nil, authzResources),
		"resource-delete": authzSimple("--app APP --code CODE", "Deletes a resource no resource is below and no role uses.", []string{"app", "code"}, nil, authzResourceDelete),
		"role-create":     authzRoleCmd(false),
		"role-update":     authzRoleCmd(true),
		"role-get":        authzSimple("ID", "Shows a role.", nil, []string{"ID"}, authzRoleGet),
		"roles":           authzSimple("[--app APP]", "Lists the roles of an application (no --app: global roles).", nil, nil, authzRoles),
		"role-delete":     authzSimple("ID", "Deletes a role no grant, role or exclusion uses.", nil, []string{"ID"}, authzRoleDelete),
		"roles-resend": authzSimple("--app APP", "Sends every role of an application again, unchanged (for role provisioning turned on after an upgrade).",
			[]string{"app"}, nil, authzRolesResend),
		"grant":            authzGrantCmd(),
		"grants":           authzGrantsCmd(),
		"revoke":           authzSimple("GRANT_ID", "Revokes a grant.", nil, []string{"GRANT_ID"}, authzRevoke),
		"exclude":          authzExcludeCmd(),
		"exclusions":       authzSimple("", "Lists the mutually exclusive role pairs.", nil, nil, authzExclusions),
		"exclusion-delete": authzSimple("ID", "Deletes an exclusive pair.", nil, []string{"ID"}, authzExclusionDelete),
	}
}

type authzCall func(s *session, c *authzClients, flags map[string]*string, args []string) (proto.Message, func(tw *tabwriter.Writer), error)

type authzClients struct {
	q   authzv1.AuthzServiceClient
	adm authzv1.AuthzAdminServiceClient
}

// authzSimple is a command with string flags (the required ones named in
// req) and positional arguments.
func authzSimple(usage, help string, req, args []string, call authzCall) command {
	return command{usage: usage, help: help, setup: func(a *app, fs *flag.FlagSet) func([]string) error {
		flags := map[string]*string{"app": fs.String("app", "", "application `App_ID`")}
		for _, r := range req {
			if flags[r] == nil {
				flags[r] = fs.String(r, "", r)
			}
		}
		return func(pos []string) error {
			if err := wantArgs(pos, args...); err != nil {
				return err
			}
			for _, r := range req {
				if *flags[r] == "" {
					return usagef("--%s is required", r)
				}
			}
			return a.withSession(func(s *session) error {
				m, table, err := call(s, &authzClients{q: authzv1.NewAuthzServiceClient(s.conn), adm: authzv1.NewAuthzAdminServiceClient(s.conn)}, flags, pos)
				if err != nil {
					return err
				}
				return a.output(m, table)
			})
		}
	}}
}

func authzResources(s *session, c *authzClients, f map[string]*string, _ []string) (proto.Message, func(*tabwriter.Writer), error) {
	r, err := c.adm.ListResources(s.ctx, &authzv1.ListResourcesRequest{App: *f["app"]})
	return r, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "CODE\tPARENT\tKIND\tOPERATIONS\tURL")
		for _, x := range r.GetResources() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.GetCode(), x.GetParent(), x.GetKind(), strings.Join(x.GetOperations(), ","),
				strings.TrimSpace(x.GetMethod()+" "+x.GetPathPattern()))
		}
	}, err
}

func revTable(r interface{ GetRevision() int64 }) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "revision\t%d\n", r.GetRevision()) }
}

func authzResourceDelete(s *session, c *authzClients, f map[string]*string, _ []string) (proto.Message, func(*tabwriter.Writer), error) {
	r, err := c.adm.DeleteResource(s.ctx, &authzv1.DeleteResourceRequest{App: *f["app"], Code: *f["code"]})
	return r, revTable(r), err
}

func roleTable(r *authzv1.Role, rev int64) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "id\t%s\napp\t%s\ncode\t%s\nname\t%s\n", r.GetId(), r.GetApp(), r.GetCode(), r.GetName())
		for _, p := range r.GetPermissions() {
			fmt.Fprintf(tw, "permission\t%s:%s:%s\n", p.GetApp(), p.GetResource(), p.GetOperation())
		}
		for _, j := range r.GetInherits() {
			fmt.Fprintf(tw, "inherits\t%s\n", j)
		}
		if rev > 0 {
			fmt.Fprintf(tw, "revision\t%d\n", rev)
		}
	}
}

func authzRoleGet(s *session, c *authzClients, _ map[string]*string, args []string) (proto.Message, func(*tabwriter.Writer), error) {
	r, err := c.adm.GetRole(s.ctx, &authzv1.GetRoleRequest{Id: args[0]})
	return r, roleTable(r.GetRole(), 0), err
}

func authzRoles(s *session, c *authzClients, f map[string]*string, _ []string) (proto.Message, func(*tabwriter.Writer), error) {
	r, err := c.adm.ListRoles(s.ctx, &authzv1.ListRolesRequest{App: *f["app"]})
	return r, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tAPP\tCODE\tNAME\tPERMISSIONS\tINHERITS")
		for _, x := range r.GetRoles() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", x.GetId(), x.GetApp(), x.GetCode(), x.GetName(), len(x.GetPermissions()), len(x.GetInherits()))
		}
	}, err
}

func authzRoleDelete(s *session, c *authzClients, _ map[string]*string, args []string) (proto.Message, func(*tabwriter.Writer), error) {
	r, err := c.adm.DeleteRole(s.ctx, &authzv1.DeleteRoleRequest{Id: args[0]})
	return r, revTable(r), err
}

func authzRolesResend(s *session, c *authzClients, f map[string]*string, _ []string) (proto.Message, func(*tabwriter.Writer), error) {
	r, err := c.adm.ResendRoles(s.ctx, &authzv1.ResendRolesRequest{App: *f["app"]})
	return r, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "roles sent again\t%d\nrevision\t%d\n", r.GetRoles(), r.GetRevision())
	}, err
}

func authzRevoke(s *session, c *authzClients, _ map[string]*string, args []string) (proto.Message, func(*tabwriter.Writer), error) {
	r, err := c.adm.RevokeGrant(s.ctx, &authzv1.RevokeGrantRequest{Id: args[0]})
	return r, revTable(r), err
}

func authzExclusions(s *session, c *authzClients, _ map[string]*string, _ []string) (proto.Message, func(*tabwriter.Writer), error) {
	r, err := c.adm.ListExclusions(s.ctx, &authzv1.ListExclusionsRequest{})
	return r, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tROLE_A\tROLE_B\tNAME")
		for _, x := range r.GetExclusions() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.GetId(), x.GetRoleA(), x.GetRoleB(), x.GetName())
		}
	}, err
}

func authzExclusionDelete(s *session, c *authzClients, _ map[string]*string, args []string) (proto.Message, func(*tabwriter.Writer), error) {
	r, err := c.adm.DeleteExclusion(s.ctx, &authzv1.DeleteExclusionRequest{Id: args[0]})
	return r, revTable(r), err
}

// listFlag is a repeatable or comma-separated string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func authzCheckCmd(explain bool) command {
	help := "Asks whether a person may do an operation on a resource (or a URL: --method and --path)."
	if explain {
		help = "Shows the grant path that allows an operation, or why it is refused."
	}
	return command{usage: "--app APP --person USER_ID (--resource R --operation OP | --method M --path P) [--at-least REV]", help: help,
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			app, person := fs.String("app", "", "application `App_ID`"), fs.String("person", "", "person's user `ID`")
			res, op := fs.String("resource", "", "resource `code`"), fs.String("operation", "", "`operation`")
			method, path := fs.String("method", "", "HTTP `method` of a URL check"), fs.String("path", "", "`path` of a URL check")
			rev := fs.Int64("at-least", 0, "answer at this `revision` or later")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if err := required("app", *app, "person", *person); err != nil {
					return err
				}
				req := &authzv1.CheckRequest{Person: *person, App: *app, Resource: *res, Operation: *op, Method: *method, Path: *path, AtLeastRevision: *rev}
				return a.withSession(func(s *session) error {
					c := authzv1.NewAuthzServiceClient(s.conn)
					if !explain {
						r, err := c.Check(s.ctx, req)
						if err != nil {
							return err
						}
						return a.output(r, func(tw *tabwriter.Writer) {
							fmt.Fprintf(tw, "allowed\t%v\nrevision\t%d\n", r.GetAllowed(), r.GetRevision())
						})
					}
					r, err := c.Explain(s.ctx, req)
					if err != nil {
						return err
					}
					return a.output(r, func(tw *tabwriter.Writer) {
						fmt.Fprintf(tw, "allowed\t%v\nrevision\t%d\nresource\t%s\noperation\t%s\n", r.GetAllowed(), r.GetRevision(), r.GetResource(), r.GetOperation())
						if g := r.GetGrant(); g != nil {
							roles := strings.Join(r.GetRolePath(), " > ")
							if g.GetPermission() != nil {
								roles = "(direct grant)"
							}
							fmt.Fprintf(tw, "grant\t%s (%s:%s)\nroles\t%s\npermission\t%s:%s\n", g.GetId(), g.GetSubject().GetKind(), g.GetSubject().GetId(),
								roles, r.GetPermission().GetResource(), r.GetPermission().GetOperation())
						}
						if r.GetReason() != "" {
							fmt.Fprintf(tw, "reason\t%s\ndetail\t%s\n", r.GetReason(), r.GetDetail())
						}
					})
				})
			}
		}}
}

func authzPermissionsCmd() command {
	return command{usage: "--app APP --person USER_ID", help: "Lists what a person may do in an application.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			app, person := fs.String("app", "", "application `App_ID`"), fs.String("person", "", "person's user `ID`")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if err := required("app", *app, "person", *person); err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					r, err := authzv1.NewAuthzServiceClient(s.conn).ListPermissions(s.ctx, &authzv1.ListPermissionsRequest{App: *app, Person: *person})
					if err != nil {
						return err
					}
					return a.output(r, func(tw *tabwriter.Writer) {
						fmt.Fprintln(tw, "RESOURCE\tOPERATION")
						for _, p := range r.GetPermissions() {
							fmt.Fprintf(tw, "%s\t%s\n", p.GetResource(), p.GetOperation())
						}
					})
				})
			}
		}}
}

func authzSubjectsCmd() command {
	return command{usage: "--app APP --resource R --operation OP", help: "Lists who may do an operation on a resource (grants to people, groups and orgs).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			app, res, op := fs.String("app", "", "application `App_ID`"), fs.String("resource", "", "resource `code`"), fs.String("operation", "", "`operation`")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if err := required("app", *app, "resource", *res, "operation", *op); err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					r, err := authzv1.NewAuthzServiceClient(s.conn).ListSubjects(s.ctx, &authzv1.ListSubjectsRequest{App: *app, Resource: *res, Operation: *op})
					if err != nil {
						return err
					}
					return a.output(r, func(tw *tabwriter.Writer) {
						fmt.Fprintln(tw, "KIND\tSUBJECT\tROLE\tGRANT")
						for _, x := range r.GetSubjects() {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.GetSubject().GetKind(), x.GetSubject().GetId(), grantWhat(x.GetRoleId(), x.GetPermission()), x.GetGrantId())
						}
					})
				})
			}
		}}
}

func authzResourcePutCmd() command {
	return command{usage: "--app APP --code CODE --kind module|menu|url|entity --ops OP[,OP] [--parent CODE] [--move] [--name N] [--method M --path-pattern P]",
		help: "Creates or replaces a resource of an application. Replacing one under another parent (or at the top, without " +
			"--parent) moves it, with what permissions on the resources above it cover: that takes --move.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			r := &authzv1.Resource{}
			var ops listFlag
			move := fs.Bool("move", false, "allow a replacement to move the resource to another parent (or to the top)")
			fs.StringVar(&r.App, "app", "", "application `App_ID`")
			fs.StringVar(&r.Code, "code", "", "resource `code`")
			fs.StringVar(&r.Kind, "kind", "", "`kind`: module, menu, url or entity")
			fs.StringVar(&r.Parent, "parent", "", "`code` of the resource above it")
			fs.StringVar(&r.Name, "name", "", "display `name`")
			fs.StringVar(&r.Method, "method", "", "HTTP `method` of a URL resource (empty: any)")
			fs.StringVar(&r.PathPattern, "path-pattern", "", "path `pattern` of a URL resource, e.g. /api/orders/{id}")
			fs.Var(&ops, "ops", "`operations`, comma-separated")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if err := required("app", r.App, "code", r.Code, "kind", r.Kind); err != nil {
					return err
				}
				r.Operations = ops
				return a.withSession(func(s *session) error {
					c := authzv1.NewAuthzAdminServiceClient(s.conn)
					if !*move {
						// a forgotten --parent moved the resource to the top:
						// every permission on the resources it was under
						// stopped covering it (trial7 L2)
						have, err := c.ListResources(s.ctx, &authzv1.ListResourcesRequest{App: r.App})
						if err != nil {
							return err
						}
						for _, old := range have.GetResources() {
							if old.GetCode() == r.Code && old.GetParent() != r.Parent {
								where, keep := "at the top", "no --parent"
								if old.GetParent() != "" {
									where, keep = fmt.Sprintf("under %q", old.GetParent()), "--parent "+old.GetParent()
								}
								return usagef("resource %q is %s: give %s to keep it there, or --move to move it "+
									"(permissions on the resources above it then cover it no more, or cover it anew)",
									r.Code, where, keep)
							}
						}
					}
					out, err := c.PutResource(s.ctx, r)
					if err != nil {
						return err
					}
					return a.output(out, revTable(out))
				})
			}
		}}
}

// parsePerm parses app:resource:operation (of flag --perm).
func parsePerm(s string) (*authzv1.Permission, error) { return parsePermFlag("perm", s) }

// parsePermFlag parses app:resource:operation, the value of flag --name.
func parsePermFlag(name, s string) (*authzv1.Permission, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, usagef("--%s %q: want APP:RESOURCE:OPERATION", name, s)
	}
	return &authzv1.Permission{App: parts[0], Resource: parts[1], Operation: parts[2]}, nil
}

// grantWhat is what a grant gives, as its table shows it: the role id, or
// "perm:APP:RESOURCE:OPERATION" for a direct grant of a permission.
func grantWhat(role string, p *authzv1.Permission) string {
	if p != nil {
		return "perm:" + p.GetApp() + ":" + p.GetResource() + ":" + p.GetOperation()
	}
	return role
}

func authzRoleCmd(update bool) command {
	usage, help := "--code C [--app APP] [--name N] [--perm APP:RES:OP]... [--inherits ROLE_ID]...", "Creates a role (global without --app)."
	if update {
		usage, help = "ID "+usage, "Replaces a role's code, name, permissions and inherited roles."
	}
	return command{usage: usage, help: help, setup: func(a *app, fs *flag.FlagSet) func([]string) error {
		r := &authzv1.Role{}
		var perms, inherits listFlag
		fs.StringVar(&r.App, "app", "", "application `App_ID` (empty: a global role)")
		fs.StringVar(&r.Code, "code", "", "role `code`")
		fs.StringVar(&r.Name, "name", "", "display `name`")
		fs.Var(&perms, "perm", "`permission` APP:RESOURCE:OPERATION (repeatable)")
		fs.Var(&inherits, "inherits", "`ID` of a junior role this role includes (repeatable)")
		return func(args []string) error {
			want := []string{}
			if update {
				want = []string{"ID"}
			}
			if err := wantArgs(args, want...); err != nil {
				return err
			}
			if err := required("code", r.Code); err != nil {
				return err
			}
			for _, p := range perms {
				pp, err := parsePerm(p)
				if err != nil {
					return err
				}
				r.Permissions = append(r.Permissions, pp)
			}
			r.Inherits = inherits
			return a.withSession(func(s *session) error {
				c := authzv1.NewAuthzAdminServiceClient(s.conn)
				var out *authzv1.RoleResponse
				var err error
				if update {
					r.Id = args[0]
					out, err = c.UpdateRole(s.ctx, r)
				} else {
					out, err = c.CreateRole(s.ctx, r)
				}
				if err != nil {
					return err
				}
				return a.output(out, roleTable(out.GetRole(), out.GetRevision()))
			})
		}
	}}
}

// grantHeader heads grantTable's rows.
const grantHeader = "ID\tROLE\tSUBJECT\tFROM\tUNTIL\tSCOPE"

func grantTable(tw *tabwriter.Writer, g *authzv1.Grant) {
	fmt.Fprintf(tw, "%s\t%s\t%s:%s\t%s\t%s\t%s\n", g.GetId(), grantWhat(g.GetRoleId(), g.GetPermission()), g.GetSubject().GetKind(), g.GetSubject().GetId(),
		tsText(g.GetValidFrom()), tsText(g.GetValidUntil()), grantScope(g))
}

// grantScope says what a unit administrator's grant is over (trial12
// D6): the org subtree, the roles they may hand on, and whether they may
// appoint unit administrators below them; "-" for any other grant.
func grantScope(g *authzv1.Grant) string {
	if g.GetScopeOrg() == "" {
		return "-"
	}
	out := "org:" + g.GetScopeOrg()
	if rs := g.GetGrantableRoles(); len(rs) > 0 {
		out += " grantable:" + strings.Join(rs, ",")
	}
	if g.GetDelegable() {
		out += " delegable"
		if d := g.GetDelegationDepth(); d > 1 {
			out += fmt.Sprintf(":%d", d)
		}
	}
	return out
}

func tsText(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func authzGrantCmd() command {
	return command{usage: "(--role ROLE_ID | --permission APP:RESOURCE:OPERATION) (--user ID | --group ID | --org ID) [--from RFC3339] [--until RFC3339] [--scope-org ORG_ID --grantable ROLE_ID,... [--delegable [--depth N]]]",
		help: "Grants a role to a person, a group, or an org and every org below it, optionally for a time window. " +
			"--permission grants one permission directly instead of a role (docs/operators.md, direct grants). " +
			"A unit administrator (--role unit_admin) is granted over an org subtree (--scope-org) with the roles they may hand on (--grantable) " +
			"and, with --delegable, the right to appoint unit administrators below them (--depth N: N levels of them, one below the other; " +
			"each appointee's depth below its appointer's; default 1: the appointees appoint nobody). " +
			"Appointing a person to an administrator role replaces a password someone else set for them (or gives one to a person " +
			"without) with an activation password, printed once: hand it over; they choose their own at their first administrator login.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			role := fs.String("role", "", "role `ID`")
			perm := fs.String("permission", "", "grant this `APP:RESOURCE:OPERATION` directly instead of a role")
			user, group, org := fs.String("user", "", "user `ID`"), fs.String("group", "", "group `ID`"), fs.String("org", "", "org `ID`")
			from, until := fs.String("from", "", "valid from (RFC 3339 `time`)"), fs.String("until", "", "valid until (RFC 3339 `time`)")
			scope := fs.String("scope-org", "", "unit_admin: the `ORG_ID` whose subtree they administer")
			grantable := fs.String("grantable", "", "unit_admin: comma-separated role `IDs` they may hand on")
			delegable := fs.Bool("delegable", false, "unit_admin: may appoint unit administrators below them")
			depth := fs.Uint("depth", 0, "unit_admin with --delegable: how many `LEVELS` of unit administrators may be appointed below them (1-8)")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if (*role == "") == (*perm == "") {
					return usagef("name exactly one of --role and --permission")
				}
				if *depth > 0 && !*delegable {
					return usagef("--depth goes with --delegable")
				}
				if *depth > 8 {
					return usagef("--depth is at most 8")
				}
				g := &authzv1.Grant{RoleId: *role, ScopeOrg: *scope, Delegable: *delegable, DelegationDepth: uint32(*depth)}
				if *perm != "" {
					p, err := parsePermFlag("permission", *perm)
					if err != nil {
						return err
					}
					g.Permission = p
				}
				for _, r := range strings.Split(*grantable, ",") {
					if r = strings.TrimSpace(r); r != "" {
						g.GrantableRoles = append(g.GrantableRoles, r)
					}
				}
				n := 0
				for kind, id := range map[string]string{"user": *user, "group": *group, "org": *org} {
					if id != "" {
						g.Subject, n = &authzv1.Subject{Kind: kind, Id: id}, n+1
					}
				}
				if n != 1 {
					return usagef("name exactly one of --user, --group and --org")
				}
				for _, t := range []struct {
					v   string
					dst **timestamppb.Timestamp
				}{{*from, &g.ValidFrom}, {*until, &g.ValidUntil}} {
					if t.v == "" {
						continue
					}
					tt, err := time.Parse(time.RFC3339, t.v)
					if err != nil {
						return usagef("%q is not an RFC 3339 time (e.g. 2026-12-31T18:00:00Z)", t.v)
					}
					*t.dst = timestamppb.New(tt)
				}
				return a.withSession(func(s *session) error {
					out, err := authzv1.NewAuthzAdminServiceClient(s.conn).CreateGrant(s.ctx, g)
					if err != nil {
						return err
					}
					return a.output(out, func(tw *tabwriter.Writer) {
						fmt.Fprintln(tw, grantHeader)
						grantTable(tw, out.GetGrant())
						fmt.Fprintf(tw, "revision\t%d\n", out.GetRevision())
						if pw := out.GetActivationPassword(); pw != "" {
							// the password another set was replaced: the
							// appointer hands this one over
							fmt.Fprintf(tw, "activation password\t%s\t(shown this once: hand it to the person in person; "+
								"they choose their own at their first administrator login)\n", pw)
						}
					})
				})
			}
		}}
}

func authzGrantsCmd() command {
	return command{usage: "[--role ROLE_ID | --permission APP:RESOURCE:OPERATION] [--user ID | --group ID | --org ID] [--page-size N] [--page-token T]",
		help: "Lists grants, of a role, or the direct grants of a permission, or of a subject.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			role := fs.String("role", "", "role `ID`")
			perm := fs.String("permission", "", "direct grants of this `APP:RESOURCE:OPERATION`")
			user, group, org := fs.String("user", "", "user `ID`"), fs.String("group", "", "group `ID`"), fs.String("org", "", "org `ID`")
			size, token := fs.Int("page-size", 0, "grants per `page`"), fs.String("page-token", "", "page `token`")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if *size < 0 || *size > authzMaxPage {
					return usagef("--page-size must be between 0 and %d (the most the server answers in one page)", authzMaxPage)
				}
				req := &authzv1.ListGrantsRequest{RoleId: *role, PageSize: int32(*size), PageToken: *token}
				if *perm != "" {
					p, err := parsePermFlag("permission", *perm)
					if err != nil {
						return err
					}
					req.Permission = p
				}
				for kind, id := range map[string]string{"user": *user, "group": *group, "org": *org} {
					if id != "" {
						req.SubjectKind, req.SubjectId = kind, id
					}
				}
				return a.withSession(func(s *session) error {
					out, err := authzv1.NewAuthzAdminServiceClient(s.conn).ListGrants(s.ctx, req)
					if err != nil {
						return err
					}
					return a.output(out, func(tw *tabwriter.Writer) {
						fmt.Fprintln(tw, grantHeader)
						for _, g := range out.GetGrants() {
							grantTable(tw, g)
						}
						if out.GetNextPageToken() != "" {
							fmt.Fprintf(tw, "next page\t%s\n", out.GetNextPageToken())
						}
					})
				})
			}
		}}
}

func authzExcludeCmd() command {
	return command{usage: "--role-a ROLE_ID --role-b ROLE_ID [--name N]", help: "Declares two roles mutually exclusive (separation of duty).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			ra, rb, name := fs.String("role-a", "", "role `ID`"), fs.String("role-b", "", "role `ID`"), fs.String("name", "", "`name` of the rule")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if err := required("role-a", *ra, "role-b", *rb); err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					out, err := authzv1.NewAuthzAdminServiceClient(s.conn).CreateExclusion(s.ctx, &authzv1.Exclusion{RoleA: *ra, RoleB: *rb, Name: *name})
					if err != nil {
						return err
					}
					return a.output(out, func(tw *tabwriter.Writer) {
						fmt.Fprintf(tw, "id\t%s\nrevision\t%d\n", out.GetExclusion().GetId(), out.GetRevision())
					})
				})
			}
		}}
}
