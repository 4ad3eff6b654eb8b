package ctl

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// commands lists every command by noun and verb; login and logout use the
// empty verb.
func commands() map[string]map[string]command {
	return map[string]map[string]command{
		"login":  {"": loginCmd()},
		"logout": {"": logoutCmd()},
		"org": {
			"create":  orgCreateCmd(),
			"list":    orgListCmd(),
			"get":     orgGetCmd(),
			"rename":  orgRenameCmd(),
			"move":    orgMoveCmd(),
			"resend":  orgResendCmd(),
			"disable": orgStatusCmd(identityv1.Status_STATUS_DISABLED),
			"enable":  orgStatusCmd(identityv1.Status_STATUS_ACTIVE),
			"delete": deleteCmd("org", "Deletes an empty org (no orgs, people or groups under it; the root org stays).",
				func(s *session, id string) (proto.Message, error) {
					return s.client.DeleteOrg(s.ctx, &identityv1.DeleteOrgRequest{Id: id})
				}),
		},
		"user": {
			"create":         userCreateCmd(),
			"list":           userListCmd(),
			"get":            userGetCmd(),
			"update":         userUpdateCmd(),
			"set-password":   userSetPasswordCmd(),
			"reset-password": userResetPasswordCmd(),
			"lock":           userLockCmd(),
			"unlock":         userUnlockCmd(),
			"disable":        userStatusCmd(identityv1.UserStatus_USER_STATUS_DISABLED),
			"enable":         userStatusCmd(identityv1.UserStatus_USER_STATUS_ACTIVE),
			"delete":         userDeleteCmd(),
			"finger":         userFingerCmd(),
			"bind-cert":      userBindCertCmd(),
			"bind-certs":     userBindCertsCmd(),
			"unbind-cert":    userUnbindCertCmd(),
			"certs":          userCertsCmd(),
			"reset-totp":     userResetTOTPCmd(),
		},
		"group": {
			"create":        groupCreateCmd(),
			"list":          groupListCmd(),
			"get":           groupGetCmd(),
			"rename":        groupRenameCmd(),
			"add-member":    groupMemberCmd(true),
			"remove-member": groupMemberCmd(false),
			"delete": deleteCmd("group", "Deletes the group and its memberships (its members stay).",
				func(s *session, id string) (proto.Message, error) {
					return s.client.DeleteGroup(s.ctx, &identityv1.DeleteGroupRequest{Id: id})
				}),
		},
		"app": {
			"create":        appCreateCmd(),
			"list":          appListCmd(),
			"get":           appGetCmd(),
			"update":        appUpdateCmd(),
			"suspend":       appStatusCmd(identityv1.AppStatus_APP_STATUS_SUSPENDED),
			"activate":      appStatusCmd(identityv1.AppStatus_APP_STATUS_ACTIVE),
			"rotate-secret": appRotateCmd(),
			"finger-bypass": appFingerBypassCmd(),
			"delete":        appDeleteCmd(),
		},
		"link": {
			"create": linkCreateCmd(),
			"list":   linkListCmd(),
			"delete": linkDeleteCmd(),
		},
		"keys":     keysCommands(),
		"audit":    withVerbs(auditCommands(), auditAnalyticsCommands()),
		"authz":    authzCommands(),
		"sync":     syncProvisionCommands(syncCommands()),
		"import":   importCommands(),
		"export":   exportCommands(),
		"sessions": sessionCommands(),
		"service":  serviceCommands(),
	}
}

// withSession runs fn with an authenticated session. A token got for this
// invocation alone (UIAS_ADMIN_USER + UIAS_ADMIN_PASSWORD) is revoked
// after it.
func (a *app) withSession(fn func(s *session) error) error {
	s, err := a.authSession()
	if err != nil {
		return err
	}
	defer s.close()
	err = s.wrap(fn(s))
	if s.oneOff {
		if _, lerr := s.client.AdminLogout(s.ctx, &identityv1.AdminLogoutRequest{}); lerr != nil {
			fmt.Fprintf(a.stderr, "warning: the one-off token of UIAS_ADMIN_USER was not revoked (%v); it ends when unused for the idle time\n",
				status.Convert(lerr).Message())
		}
	}
	return err
}

// ---- login / logout ----

func loginCmd() command {
	return command{
		usage: "--user NAME [--password-stdin] [--new-password-stdin] [--otp CODE] [--print-token]",
		help: "Logs in to the AdminService and stores the token in the token file (mode 0600).\n" +
			"The password is read from the first line of standard input with --password-stdin,\n" +
			"otherwise from the UIAS_ADMIN_PASSWORD environment variable. The token itself is\n" +
			"printed (also with -o json) only with --print-token. An administrator who backs up the\n" +
			"audit log (the security auditor) is then reminded, on standard error, when a backup\n" +
			"is due (audit.backup_reminder; see audit backup).\n" +
			"With --new-password-stdin the next line of standard input (the second after the\n" +
			"password's) is a new password that replaces the current one as you log in. It is\n" +
			"required when your password has expired or must be changed (an account created with\n" +
			"--must-change, a reset of your own): such a login otherwise fails and saves no token.\n" +
			"With an authenticator app set up on your account (My profile), --otp gives its current\n" +
			"six-digit code: required then (a one-time code, valid for about a minute).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			user := fs.String("user", a.env("UIAS_ADMIN_USER"), "administrator login `name` (env UIAS_ADMIN_USER)")
			fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
			newFromStdin := fs.Bool("new-password-stdin", false,
				"read a new password from the next line of standard input and set it as you log in")
			printToken := fs.Bool("print-token", false, "print the token too (it is a credential: keep it out of logs)")
			otp := fs.String("otp", "", "the current `code` of your authenticator app, when your account has one")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if err := required("user", *user); err != nil {
					return err
				}
				var want []string
				if *fromStdin {
					want = append(want, "password")
				} else if a.env("UIAS_ADMIN_PASSWORD") == "" {
					return usagef("no password: pass it on standard input with --password-stdin, or set UIAS_ADMIN_PASSWORD")
				}
				if *newFromStdin {
					want = append(want, "new password")
				}
				lines, err := a.readSecretLines(want...)
				if err != nil {
					return err
				}
				req := &identityv1.AdminLoginRequest{LoginName: *user, Password: a.env("UIAS_ADMIN_PASSWORD")}
				if *fromStdin {
					req.Password, lines = lines[0], lines[1:]
				}
				if *newFromStdin {
					req.NewPassword = lines[0]
				}
				req.Otp = strings.TrimSpace(*otp)
				s, err := a.dial()
				if err != nil {
					return err
				}
				defer s.close()
				resp, err := s.client.AdminLogin(s.ctx, req)
				if st := status.Convert(err); apierr.Info(st).GetReason() == "PASSWORD_CHANGE_REQUIRED" {
					return status.Errorf(st.Code(), "%s; no token was saved. Choose a new password and log in with it: "+
						"uias ctl login --user %s --password-stdin --new-password-stdin "+
						"(the current password on the first line of standard input, the new one on the second)", st.Message(), *user)
				}
				if st := status.Convert(err); apierr.Info(st).GetReason() == "TOTP_CODE_REQUIRED" {
					return status.Errorf(st.Code(), "your account has an authenticator app: log in with its current code, "+
						"uias ctl login --user %s --password-stdin --otp CODE; no token was saved", *user)
				}
				if err != nil {
					return err
				}
				if resp.GetToken() == "" {
					return errors.New("the server returned no token")
				}
				path, err := a.saveToken(resp.GetToken())
				if err != nil {
					return err
				}
				shown := proto.CloneOf(resp)
				if !*printToken {
					shown.Token = ""
				}
				if err := a.output(shown, func(tw *tabwriter.Writer) {
					fmt.Fprintf(tw, "Logged in as %s; token saved to %s", *user, path)
					if exp := ts(resp.GetExpiresAt()); exp != "" {
						fmt.Fprintf(tw, " (expires %s at the latest)", exp)
					}
					fmt.Fprintln(tw, ".")
					if *printToken {
						fmt.Fprintf(tw, "Token: %s\n", resp.GetToken())
					}
				}); err != nil {
					return err
				}
				if *newFromStdin {
					fmt.Fprintln(a.stderr, "Your password was changed.")
				}
				if resp.GetMustChangePassword() {
					fmt.Fprintln(a.stderr, "Note: your password is marked to be changed, but you may not change it "+
						"yourself (user_cannot_change_password): it stands until it expires, when you choose a new one at login.")
				}
				a.backupReminder(s, resp.GetToken())
				return nil
			}
		},
	}
}

func logoutCmd() command {
	return command{
		usage: "",
		help: "Revokes the token on the server (AdminLogout) and deletes the stored token file.\n" +
			"With --token or UIAS_TOKEN, that token is revoked and the file is left alone.",
		setup: func(a *app, _ *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				token, fromFile, err := a.findToken()
				if err != nil {
					return err
				}
				path := ""
				if dir, err := a.configDir(); err == nil {
					path = filepath.Join(dir, tokenFileName)
				}
				if token == "" {
					return a.loggedOut(path, false, false, fmt.Sprintf("Not logged in (no token file at %s).", path))
				}
				revoked, revokeErr := a.revoke(token)
				removed := false
				if fromFile {
					if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("removing token file: %w", err)
					}
					removed = true
				}
				if revokeErr != nil {
					msg := "the server could not revoke the token, which stays valid until it expires or is unused for the idle time"
					if removed {
						msg = "token file removed, but " + msg
					}
					return fmt.Errorf("%s: %w", msg, revokeErr)
				}
				what := "Logged out: token revoked"
				if !revoked {
					what = "Logged out: the token was no longer valid"
				}
				if removed {
					what += "; removed " + path
				}
				return a.loggedOut(path, removed, revoked, what+".")
			}
		},
	}
}

// revoke calls AdminLogout with token: revoked is false when the server
// no longer knew the token (UNAUTHENTICATED: expired, idle or revoked).
func (a *app) revoke(token string) (revoked bool, err error) {
	s, err := a.dial()
	if err != nil {
		return false, err
	}
	defer s.close()
	ctx := metadata.AppendToOutgoingContext(s.ctx, "authorization", "Bearer "+token)
	if _, err := s.client.AdminLogout(ctx, &identityv1.AdminLogoutRequest{}); err != nil {
		if status.Code(err) == codes.Unauthenticated {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// loggedOut reports the outcome of logout.
func (a *app) loggedOut(path string, removed, revoked bool, msg string) error {
	if a.g.output == "json" {
		b, _ := json.Marshal(map[string]any{"token_file": path, "removed": removed, "revoked": revoked})
		_, err := fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintln(a.stdout, msg)
	return err
}

// ---- listing ----

type listOpts struct {
	pageSize  int
	pageToken string
	all       bool
	max       int // the largest page the server answers
}

// The largest pages the services answer (their page_size checks); ctl
// refuses a larger --page-size before calling, saying so.
const (
	identityMaxPage = 500  // identity's listings (services/identity, pageOf)
	syncMaxPage     = 1000 // sync's listings, which set no bound of their own
	authzMaxPage    = 1000 // authz grants (services/authz/commands.MaxPageSize)
)

// addListFlags defines --page-size (at most max), --page-token and --all.
func addListFlags(fs *flag.FlagSet, max int) *listOpts {
	o := &listOpts{max: max}
	fs.IntVar(&o.pageSize, "page-size", 0, "results per page (0: server default)")
	fs.StringVar(&o.pageToken, "page-token", "", "continue from this page `token`")
	fs.BoolVar(&o.all, "all", false, "follow next_page_token and list everything")
	return o
}

func (o *listOpts) check() error {
	if o.pageSize < 0 || o.pageSize > o.max {
		return usagef("--page-size must be between 0 and %d (the most the server answers in one page; --all lists everything)", o.max)
	}
	return nil
}

// maxPages bounds --all so a misbehaving server cannot loop forever.
const maxPages = 100000

// paginate fetches one page, or with all every page, and returns the items
// and the token of the next page (empty after --all).
func paginate[T any](o *listOpts, fetch func(token string) ([]T, string, error)) ([]T, string, error) {
	var items []T
	token := o.pageToken
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		page, next, err := fetch(token)
		if err != nil {
			return nil, "", err
		}
		items = append(items, page...)
		if !o.all || next == "" {
			return items, next, nil
		}
		if seen[next] || pages >= maxPages {
			return nil, "", errors.New("the server keeps returning more pages (repeated next_page_token); stopping")
		}
		seen[next] = true
		token = next
	}
}

// moreHint tells a table reader that more results may exist: a page
// token says where to go on, not that something is there (a people search
// hands one out after the login-name matches without running the costlier
// substring search until asked).
func (a *app) moreHint(next string) {
	if next != "" && a.g.output != "json" {
		fmt.Fprintf(a.stderr, "More results may follow: rerun with --page-token %s, or with --all.\n", next)
	}
}

// ---- org ----

func orgCreateCmd() command {
	return verb("--code C --name N --parent ID", "", nil, func(_ *app, fs *flag.FlagSet) prepared[*identityv1.Org] {
		code := fs.String("code", "", "organisation `code`")
		name := fs.String("name", "", "organisation `name`")
		parent := fs.String("parent", "", "parent organisation `ID` (required once the root exists: uias ctl org list shows it)")
		return func([]string) (func(s *session) (*identityv1.Org, error), error) {
			if err := required("code", *code, "name", *name); err != nil {
				return nil, err
			}
			return func(s *session) (*identityv1.Org, error) {
				return s.client.CreateOrg(s.ctx, &identityv1.CreateOrgRequest{Code: *code, Name: *name, ParentId: *parent})
			}, nil
		}
	}, orgTable)
}

func orgListCmd() command {
	return listVerb("[--parent ID [--descendants]] [--query Q]", identityMaxPage, func(_ *app, fs *flag.FlagSet) pageFetch[*identityv1.Org] {
		parent := fs.String("parent", "", "only direct children of this organisation `ID`")
		desc := fs.Bool("descendants", false, "with --parent: every organisation below it, at any depth")
		query := fs.String("query", "", "match code or name (substring from 3 characters, else name prefix)")
		return func(s *session, size int32, tok string) ([]*identityv1.Org, string, error) {
			r, err := s.client.ListOrgs(s.ctx, &identityv1.ListOrgsRequest{
				PageSize: size, PageToken: tok, ParentId: *parent, Query: *query, IncludeDescendants: *desc,
			})
			return r.GetOrgs(), r.GetNextPageToken(), err
		}
	}, func(orgs []*identityv1.Org, next string) proto.Message {
		return &identityv1.ListOrgsResponse{Orgs: orgs, NextPageToken: next}
	}, orgRows)
}

func orgGetCmd() command {
	return idVerb(func(s *session, id string) (*identityv1.Org, error) {
		return s.client.GetOrg(s.ctx, &identityv1.GetOrgRequest{Id: id})
	}, orgTable)
}

func orgRenameCmd() command {
	return verb("ID --name N", "", []string{"ID"}, func(_ *app, fs *flag.FlagSet) prepared[*identityv1.Org] {
		name := fs.String("name", "", "new `name`")
		return func(args []string) (func(s *session) (*identityv1.Org, error), error) {
			if err := required("name", *name); err != nil {
				return nil, err
			}
			return func(s *session) (*identityv1.Org, error) {
				return s.client.UpdateOrg(s.ctx, &identityv1.UpdateOrgRequest{Id: args[0], Name: *name})
			}, nil
		}
	}, orgTable)
}

func groupRenameCmd() command {
	return verb("ID --name N", "The group's code, which business systems know it by, stays.", []string{"ID"},
		func(_ *app, fs *flag.FlagSet) prepared[*identityv1.Group] {
			name := fs.String("name", "", "new `name`")
			return func(args []string) (func(s *session) (*identityv1.Group, error), error) {
				if err := required("name", *name); err != nil {
					return nil, err
				}
				return func(s *session) (*identityv1.Group, error) {
					return s.client.UpdateGroup(s.ctx, &identityv1.UpdateGroupRequest{Id: args[0], Name: *name})
				}, nil
			}
		}, groupTable)
}

func orgMoveCmd() command {
	return verb("ID --parent ID", "", []string{"ID"}, func(_ *app, fs *flag.FlagSet) prepared[*identityv1.Org] {
		parent := fs.String("parent", "", "new parent organisation `ID`")
		return func(args []string) (func(s *session) (*identityv1.Org, error), error) {
			if err := required("parent", *parent); err != nil {
				return nil, err
			}
			return func(s *session) (*identityv1.Org, error) {
				return s.client.MoveOrg(s.ctx, &identityv1.MoveOrgRequest{Id: args[0], NewParentId: *parent})
			}, nil
		}
	}, orgTable)
}

// orgResendCmd sends an org's subtree again to the other centres (at its
// home centre), e.g. after a conflict there was mended.
func orgResendCmd() command {
	return idVerb(func(s *session, id string) (*identityv1.ResendOrgResponse, error) {
		return s.client.ResendOrg(s.ctx, &identityv1.ResendOrgRequest{Id: id})
	}, resendTable)
}

func orgStatusCmd(st identityv1.Status) command {
	return idVerb(func(s *session, id string) (*identityv1.Org, error) {
		return s.client.SetOrgStatus(s.ctx, &identityv1.SetOrgStatusRequest{Id: id, Status: st})
	}, orgTable)
}

// ---- user ----

func parseIDType(s string) (identityv1.IdType, bool) {
	switch strings.ToLower(s) {
	case "resident_id":
		return identityv1.IdType_ID_TYPE_RESIDENT_ID, true
	case "passport":
		return identityv1.IdType_ID_TYPE_PASSPORT, true
	case "military":
		return identityv1.IdType_ID_TYPE_MILITARY, true
	case "other":
		return identityv1.IdType_ID_TYPE_OTHER, true
	case "uscc", "unified_social_credit_code":
		return identityv1.IdType_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE, true
	case "org_code", "organization_code":
		return identityv1.IdType_ID_TYPE_ORGANIZATION_CODE, true
	}
	return identityv1.IdType_ID_TYPE_UNSPECIFIED, false
}

// idTypeUsage lists --id-type's values.
const idTypeUsage = "resident_id, passport, military, other (a person's); uscc, org_code (a unit's)"

// userTypes are the values of --type.
var userTypes = map[string]identityv1.UserType{
	"person": identityv1.UserType_USER_TYPE_PERSON, "unit": identityv1.UserType_USER_TYPE_UNIT,
}

func parseUserType(s string) (identityv1.UserType, error) {
	t, ok := userTypes[strings.ToLower(s)]
	if !ok {
		return 0, usagef("--type must be person or unit, not %q", s)
	}
	return t, nil
}

func userCreateCmd() command {
	return command{
		usage: "--login L --name N --org ID [--type person|unit] [--id-type resident_id|passport|military|other|uscc|org_code] [--id-number X] " +
			"[--phone P] [--email E] [--password-stdin] [--must-change] [--never-expires] [--cannot-change] [--password-only] [--admin] " +
			"[--min-auth-level any|two-factor|certificate]",
		help: "With --password-stdin the initial password is read from the first line of standard input;\n" +
			"without it the user cannot log in by password until one is set with set-password.\n" +
			"--type unit makes a unit's (单位) account: --name is the unit's name, --id-type uscc (unified\n" +
			"social credit code) or org_code (organisation code) or none.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			login := fs.String("login", "", "login `name`")
			name := fs.String("name", "", "display `name`")
			org := fs.String("org", "", "organisation `ID`")
			idt := fs.String("id-type", "", "ID document `type`: "+idTypeUsage)
			idNumber := fs.String("id-number", "", "ID document `number`")
			typ := fs.String("type", "person", "whose account: `person` or unit")
			phone := fs.String("phone", "", "mobile `number`")
			email := fs.String("email", "", "e-mail `address`")
			fromStdin := fs.Bool("password-stdin", false, "read the initial password from the first line of standard input")
			mustChange := fs.Bool("must-change", false, "the user must change the password at first login")
			neverExpires := fs.Bool("never-expires", false, "the password never expires")
			cannotChange := fs.Bool("cannot-change", false, "the user may not change the password")
			passwordOnly := fs.Bool("password-only", false, "the user may authenticate by password only (fingerprint Authenticate answers -3)")
			admin := fs.Bool("admin", false, "the user is an administrator")
			minLevel := fs.String("min-auth-level", "", "the `LEVEL` the person must sign in with everywhere: "+authLevelUsage+
				" (the policy's, identity.policy.min_auth_level)")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if err := required("login", *login, "name", *name, "org", *org); err != nil {
					return err
				}
				req := &identityv1.CreateUserRequest{
					LoginName: *login, DisplayName: *name, OrgId: *org, IdNumber: *idNumber,
					Phone: *phone, Email: *email, MustChangePassword: *mustChange,
					PasswordNeverExpires: *neverExpires, UserCannotChangePassword: *cannotChange, IsAdmin: *admin,
					PasswordOnly: *passwordOnly,
				}
				ut, err := parseUserType(*typ)
				if err != nil {
					return err
				}
				req.UserType = ut
				if *minLevel != "" {
					l, err := parseAuthLevel(*minLevel)
					if err != nil {
						return err
					}
					req.MinAuthLevel = l
				}
				if *idt != "" && *idt != "none" { // none: no document, the default
					t, ok := parseIDType(*idt)
					if !ok {
						return usagef("--id-type must be resident_id, passport, military, other, uscc, org_code or none, not %q", *idt)
					}
					req.IdType = t
				}
				if *fromStdin {
					p, err := a.readSecretLine("initial password")
					if err != nil {
						return err
					}
					req.Password = p
				}
				return sessionCall(a, func(s *session) (*identityv1.User, error) { return s.client.CreateUser(s.ctx, req) }, userTable)
			}
		},
	}
}

// userStatuses are the values of user list --status.
var userStatuses = map[string]identityv1.UserStatus{
	"": identityv1.UserStatus_USER_STATUS_UNSPECIFIED, "active": identityv1.UserStatus_USER_STATUS_ACTIVE,
	"disabled": identityv1.UserStatus_USER_STATUS_DISABLED,
}

func userListCmd() command {
	return listVerb("[--org ID [--descendants]] [--query Q] [--status active|disabled] [--type person|unit] [--password-expired]", identityMaxPage, func(_ *app, fs *flag.FlagSet) pageFetch[*identityv1.User] {
		org := fs.String("org", "", "only users of this organisation `ID`")
		desc := fs.Bool("descendants", false, "with --org: also the users of every organisation below it")
		query := fs.String("query", "", "match login name, display name or e-mail (substring from 3 characters, "+
			"else display-name prefix)")
		st := fs.String("status", "", "only users of this `status`: active or disabled")
		expired := fs.Bool("password-expired", false, "only users whose password has expired (identity.policy.max_age_days)")
		typ := fs.String("type", "", "only accounts of this `type`: person or unit")
		return func(s *session, size int32, tok string) ([]*identityv1.User, string, error) {
			status, ok := userStatuses[*st]
			if !ok {
				return nil, "", usagef("--status must be active or disabled")
			}
			var ut identityv1.UserType
			if *typ != "" {
				var err error
				if ut, err = parseUserType(*typ); err != nil {
					return nil, "", err
				}
			}
			r, err := s.client.ListUsers(s.ctx, &identityv1.ListUsersRequest{
				PageSize: size, PageToken: tok, OrgId: *org, Query: *query, IncludeDescendants: *desc,
				Status: status, PasswordExpired: *expired, UserType: ut,
			})
			return r.GetUsers(), r.GetNextPageToken(), err
		}
	}, func(users []*identityv1.User, next string) proto.Message {
		return &identityv1.ListUsersResponse{Users: users, NextPageToken: next}
	}, userRows)
}

func userGetCmd() command {
	return idVerb(func(s *session, id string) (*identityv1.User, error) {
		return s.client.GetUser(s.ctx, &identityv1.GetUserRequest{Id: id})
	}, func(tw *tabwriter.Writer, u *identityv1.User) {
		userTable(tw, u)
		// Only GetUser answers it (the other calls' users leave it out).
		app := "no"
		if u.GetTotpEnrolled() {
			app = "yes (since " + ts(u.GetTotpEnrolledAt()) + ")"
		}
		fields(tw, "Authenticator app", app)
		if src := u.GetCredentialSource(); src != "" {
			// local: UIAS's hash; ldap:NAME: that directory's password
			// (identity.ldap_auth).
			fields(tw, "Credential source", src)
		}
	})
}

func userResetTOTPCmd() command {
	c := idVerb(func(s *session, id string) (*identityv1.User, error) {
		return s.client.ResetUserTotp(s.ctx, &identityv1.ResetUserTotpRequest{Id: id})
	}, func(tw *tabwriter.Writer, u *identityv1.User) {
		userTable(tw, u)
		fields(tw, "Authenticator app", "no (reset: "+u.GetLoginName()+" signs in with the password alone until they set up a new one)")
	})
	c.help = "Removes the user's authenticator app (TOTP), e.g. after a lost phone: the user signs in with the\n" +
		"password alone again and may set up a new app on My profile. Fails (NOT_FOUND) when none is set up."
	return c
}

func userUnlockCmd() command {
	return idVerb(func(s *session, id string) (*identityv1.User, error) {
		return s.client.UnlockUser(s.ctx, &identityv1.UnlockUserRequest{Id: id})
	}, userTable)
}

func userStatusCmd(st identityv1.UserStatus) command {
	return command{
		usage: "ID...",
		help: "With several IDs each user is done in turn; one that fails is reported and the others go on (exit 3).\n" +
			"At the level-1 centre, a person homed at a level-2 centre is disabled (enabled) by level 1, everywhere,\n" +
			"apart from their home's own status: only level 1 enables them again (ADR 0048).",
		setup: func(a *app, _ *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if err := wantIDs(args); err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					var done []*identityv1.User
					err := a.eachID(args, func(id string) error {
						u, err := s.client.SetUserStatus(s.ctx, &identityv1.SetUserStatusRequest{Id: id, Status: st})
						if err == nil {
							done = append(done, u)
						}
						return err
					})
					if len(args) == 1 && err != nil {
						return err
					}
					var out error
					if len(done) == 1 && len(args) == 1 {
						out = a.output(done[0], func(tw *tabwriter.Writer) { userTable(tw, done[0]) })
					} else {
						out = outputList(a, "users", done, func(tw *tabwriter.Writer) { userRows(tw, done) })
					}
					return errors.Join(err, out)
				})
			}
		},
	}
}

// wantIDs checks a command's IDs: at least one, none empty.
func wantIDs(args []string) error {
	if len(args) == 0 {
		return usagef("missing ID")
	}
	for _, v := range args {
		if strings.TrimSpace(v) == "" {
			return usagef("ID must not be empty")
		}
	}
	return nil
}

// eachID calls do for every id in turn. With one id its error is the
// command's; with several, a failure is printed on standard error naming
// the id and the others go on, and the command ends with a partial error
// (exit 3). An answer that the session is gone stops at once.
func (a *app) eachID(ids []string, do func(id string) error) error {
	if len(ids) == 1 {
		return do(ids[0])
	}
	failed := 0
	for _, id := range ids {
		err := do(id)
		if err == nil {
			continue
		}
		if status.Code(err) == codes.Unauthenticated {
			return err
		}
		fmt.Fprintf(a.stderr, "error: %s: %s\n", id, a.describe(err))
		failed++
	}
	if failed > 0 {
		return &partialError{msg: fmt.Sprintf("%d of %d failed (listed above); the others were done", failed, len(ids))}
	}
	return nil
}

func userResetPasswordCmd() command {
	return command{
		usage: "ID... | --password-expired [--org ID [--descendants]]",
		help: "Gives each user a random temporary password that meets the password policy and must be changed\n" +
			"at next login, and prints it this once; the user's SSO sessions end. --password-expired resets\n" +
			"every user whose password has expired (in --org). A user that fails is reported and the others\n" +
			"go on (exit 3). Hand each password over by a channel the user trusts.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			expired := fs.Bool("password-expired", false, "reset every user whose password has expired")
			org := fs.String("org", "", "with --password-expired: only users of this organisation `ID`")
			desc := fs.Bool("descendants", false, "with --org: also the users of every organisation below it")
			return func(args []string) error {
				switch {
				case *expired && len(args) > 0:
					return usagef("give user IDs or --password-expired, not both")
				case !*expired && (*org != "" || *desc):
					return usagef("--org and --descendants go with --password-expired")
				case !*expired:
					if err := wantIDs(args); err != nil {
						return err
					}
				}
				return a.withSession(func(s *session) error {
					ids := args
					if *expired {
						users, _, err := paginate(&listOpts{all: true}, func(tok string) ([]*identityv1.User, string, error) {
							r, err := s.client.ListUsers(s.ctx, &identityv1.ListUsersRequest{PageSize: identityMaxPage, PageToken: tok,
								OrgId: *org, IncludeDescendants: *desc, PasswordExpired: true})
							return r.GetUsers(), r.GetNextPageToken(), err
						})
						if err != nil {
							return err
						}
						if len(users) == 0 {
							fmt.Fprintln(a.stderr, "No user's password has expired.")
							return outputList(a, "results", []*identityv1.ResetPasswordResponse{}, func(*tabwriter.Writer) {})
						}
						ids = nil
						for _, u := range users {
							ids = append(ids, u.GetId())
						}
					}
					var out []*identityv1.ResetPasswordResponse
					err := a.eachID(ids, func(id string) error {
						r, err := s.client.ResetPassword(s.ctx, &identityv1.ResetPasswordRequest{Id: id})
						if err == nil {
							out = append(out, r)
						}
						return err
					})
					if len(ids) == 1 && err != nil {
						return err
					}
					for _, r := range out {
						u := r.GetUser()
						switch {
						case u.GetStatus() == identityv1.UserStatus_USER_STATUS_DISABLED:
							fmt.Fprintf(a.stderr, "note: %s is disabled: the password works once the user is enabled (user enable %s)\n", u.GetLoginName(), u.GetId())
						case u.GetLocked():
							fmt.Fprintf(a.stderr, "note: %s is locked: the password works once the user is unlocked (user unlock %s)\n", u.GetLoginName(), u.GetId())
						}
					}
					return errors.Join(err, outputList(a, "results", out, func(tw *tabwriter.Writer) {
						row(tw, "ID", "LOGIN", "NAME", "TEMPORARY PASSWORD")
						for _, r := range out {
							row(tw, r.GetUser().GetId(), r.GetUser().GetLoginName(), r.GetUser().GetDisplayName(), r.GetTemporaryPassword())
						}
					}))
				})
			}
		},
	}
}

// userUpdateFlags maps user update flags to UpdateUser's update_mask names.
var userUpdateFlags = []struct{ flag, field string }{
	{"name", "display_name"}, {"phone", "phone"}, {"email", "email"}, {"org", "org_id"},
	{"must-change", "must_change_password"}, {"never-expires", "password_never_expires"},
	{"cannot-change", "user_cannot_change_password"}, {"password-only", "password_only"},
	{"id-type", "id_type"}, {"id-number", "id_number"}, {"min-auth-level", "min_auth_level"},
	{"type", "user_type"},
}

func userUpdateCmd() command {
	return command{
		usage: "ID [--name N] [--phone P] [--email E] [--org ID] [--must-change=true|false] " +
			"[--never-expires=true|false] [--cannot-change=true|false] [--password-only=true|false] " +
			"[--type person|unit] [--id-type resident_id|passport|military|other|uscc|org_code|none] [--id-number X] " +
			"[--min-auth-level any|two-factor|certificate|default]",
		help: "Only the flags given are changed (an empty value clears --phone or --email; --id-type none\n" +
			"--id-number '' removes the ID document). An ID number stays one person's: another account's is refused.\n" +
			"--type changes whose account it is; give the fitting --id-type and --id-number with it\n" +
			"(a unit's: uscc or org_code or none). The feature code is derived anew.\n" +
			"At the level-1 centre, of a person homed at a level-2 centre only --must-change=true is accepted\n" +
			"(they change their password at their next sign-in, at their home; ADR 0048).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			req := &identityv1.UpdateUserRequest{}
			idt := fs.String("id-type", "", "ID document `type`: "+idTypeUsage+", or none")
			typ := fs.String("type", "", "whose account: `person` or unit")
			fs.StringVar(&req.IdNumber, "id-number", "", "ID document `number`")
			fs.StringVar(&req.DisplayName, "name", "", "display `name`")
			fs.StringVar(&req.Phone, "phone", "", "mobile `number`")
			fs.StringVar(&req.Email, "email", "", "e-mail `address`")
			fs.StringVar(&req.OrgId, "org", "", "move the user to organisation `ID`")
			fs.BoolVar(&req.MustChangePassword, "must-change", false, "the user must change the password at next login")
			fs.BoolVar(&req.PasswordNeverExpires, "never-expires", false, "the password never expires")
			fs.BoolVar(&req.UserCannotChangePassword, "cannot-change", false, "the user may not change the password")
			fs.BoolVar(&req.PasswordOnly, "password-only", false, "the user may authenticate by password only")
			minLevel := fs.String("min-auth-level", "", "the `LEVEL` the person must sign in with everywhere: "+authLevelUsage+
				" (default: the policy's)")
			return func(args []string) error {
				if err := wantArgs(args, "ID"); err != nil {
					return err
				}
				set := map[string]bool{}
				fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
				for _, m := range userUpdateFlags {
					if set[m.flag] {
						req.UpdateMask = append(req.UpdateMask, m.field)
					}
				}
				if len(req.UpdateMask) == 0 {
					return usagef("nothing to update: give at least one of --name, --phone, --email, --org, " +
						"--must-change, --never-expires, --cannot-change, --password-only, --type, --id-type, --id-number, --min-auth-level")
				}
				if set["min-auth-level"] {
					l, err := parseAuthLevel(*minLevel)
					if err != nil {
						return err
					}
					req.MinAuthLevel = l
				}
				if set["id-type"] && *idt != "none" {
					t, ok := parseIDType(*idt)
					if !ok {
						return usagef("--id-type must be resident_id, passport, military, other, uscc, org_code or none, not %q", *idt)
					}
					req.IdType = t
				}
				if set["type"] {
					ut, err := parseUserType(*typ)
					if err != nil {
						return err
					}
					req.UserType = ut
				}
				req.Id = args[0]
				return sessionCall(a, func(s *session) (*identityv1.User, error) { return s.client.UpdateUser(s.ctx, req) }, userTable)
			}
		},
	}
}

func userSetPasswordCmd() command {
	return verb("ID [--password-stdin] [--must-change=true|false]",
		"The new password is read from the first line of standard input (--password-stdin is\n"+
			"implied; passwords are never taken from flags). --must-change defaults to true.",
		[]string{"ID"}, func(a *app, fs *flag.FlagSet) prepared[*identityv1.User] {
			fs.Bool("password-stdin", true, "read the new password from the first line of standard input (always)")
			mustChange := fs.Bool("must-change", true, "the user must change the password at next login")
			return func(args []string) (func(s *session) (*identityv1.User, error), error) {
				p, err := a.readSecretLine("new password")
				if err != nil {
					return nil, err
				}
				return func(s *session) (*identityv1.User, error) {
					return s.client.SetPassword(s.ctx, &identityv1.SetPasswordRequest{Id: args[0], Password: p, MustChangePassword: *mustChange})
				}, nil
			}
		}, userTable)
}

func userLockCmd() command {
	return verb("ID [--duration 30m]", "--duration 0 locks the user until unlocked.", []string{"ID"},
		func(_ *app, fs *flag.FlagSet) prepared[*identityv1.User] {
			d := fs.Duration("duration", 30*time.Minute, "how long the lock lasts (0: until unlocked)")
			return func(args []string) (func(s *session) (*identityv1.User, error), error) {
				if *d < 0 {
					return nil, usagef("--duration must not be negative")
				}
				if *d > 0 && *d < time.Second {
					return nil, usagef("--duration must be at least 1s (or 0 for until unlocked)")
				}
				return func(s *session) (*identityv1.User, error) {
					return s.client.LockUser(s.ctx, &identityv1.LockUserRequest{Id: args[0], DurationSeconds: int64(d.Seconds())})
				}, nil
			}
		}, userTable)
}

// ---- group ----

func groupCreateCmd() command {
	return verb("--code C --name N --org ID", "", nil, func(_ *app, fs *flag.FlagSet) prepared[*identityv1.Group] {
		code := fs.String("code", "", "group `code`")
		name := fs.String("name", "", "group `name`")
		org := fs.String("org", "", "organisation `ID`")
		return func([]string) (func(s *session) (*identityv1.Group, error), error) {
			if err := required("code", *code, "name", *name, "org", *org); err != nil {
				return nil, err
			}
			return func(s *session) (*identityv1.Group, error) {
				return s.client.CreateGroup(s.ctx, &identityv1.CreateGroupRequest{Code: *code, Name: *name, OrgId: *org})
			}, nil
		}
	}, groupTable)
}

func groupListCmd() command {
	return listVerb("[--org ID] [--query Q]", identityMaxPage, func(_ *app, fs *flag.FlagSet) pageFetch[*identityv1.Group] {
		org := fs.String("org", "", "only groups of this organisation `ID`")
		query := fs.String("query", "", "match code or name (substring)")
		return func(s *session, size int32, tok string) ([]*identityv1.Group, string, error) {
			r, err := s.client.ListGroups(s.ctx, &identityv1.ListGroupsRequest{PageSize: size, PageToken: tok, OrgId: *org, Query: *query})
			return r.GetGroups(), r.GetNextPageToken(), err
		}
	}, func(groups []*identityv1.Group, next string) proto.Message {
		return &identityv1.ListGroupsResponse{Groups: groups, NextPageToken: next}
	}, groupRows)
}

func groupGetCmd() command {
	return idVerb(func(s *session, id string) (*identityv1.Group, error) {
		return s.client.GetGroup(s.ctx, &identityv1.GetGroupRequest{Id: id})
	}, groupTable)
}

func groupMemberCmd(add bool) command {
	return verb("GROUP USER", "", []string{"GROUP", "USER"}, func(*app, *flag.FlagSet) prepared[*identityv1.Group] {
		return func(args []string) (func(s *session) (*identityv1.Group, error), error) {
			req := &identityv1.GroupMemberRequest{GroupId: args[0], UserId: args[1]}
			return func(s *session) (*identityv1.Group, error) {
				if add {
					return s.client.AddGroupMember(s.ctx, req)
				}
				return s.client.RemoveGroupMember(s.ctx, req)
			}, nil
		}
	}, groupTable)
}

// ---- app ----

func appCreateCmd() command {
	return command{
		usage: "--type T --code C --name N [--allow CIDR]... [--rate 100] [--burst 200] [--max-concurrent N] [--client-cert FILE | --client-cert-sha256 HEX] [--secret-lifetime 90d] [--signing-key FILE.pem]... [--require-signatures] [--grant-api LIST] [--access-from DATE] [--access-until DATE] [--security-level A1|A2] [--min-auth-level any|two-factor|certificate] [--legacy-ip-only] [--name-release full|masked|omitted]",
		help: "Prints the new App_ID and App_Secret. The secret is shown only once.\n" +
			"--client-cert binds the application to its client certificate (App_ID + certificate):\n" +
			"its calls must then come over TLS with that certificate.\n" +
			"--secret-lifetime is how long each of its secrets is valid (0: the server default, identity.app_secret_lifetime).\n" +
			"--signing-key registers a request signing public key (PEM file; at most 2); --require-signatures\n" +
			"makes every AuthService and AuthzService call of the application be signed (docs/operators.md, Signed requests).\n" +
			"--grant-api lists the interfaces it may call (least privilege; default: every one); --access-from and\n" +
			"--access-until bound the period it may call (docs/operators.md, Interface grants and access periods).\n" +
			"--legacy-ip-only lets the legacy Hessian/SOAP authenticate name the application by --type and --code\n" +
			"alone, without App_ID and secret, from an --allow address (A1 only, no certificate, no signatures).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			typ := fs.String("type", "", "application `type`")
			code := fs.String("code", "", "application `code`")
			name := fs.String("name", "", "application `name`")
			var allow stringList
			fs.Var(&allow, "allow", "allowed caller network (`CIDR`); repeatable; none: any address")
			rate := fs.Float64("rate", 100, "requests per second (0: no limit)")
			burst := fs.Int("burst", 200, "rate limit burst")
			maxConc := fs.Int("max-concurrent", 0, "at most `N` calls in progress at once (0: no bound)")
			nameRel := fs.String("name-release", "", "what Authenticate answers of the person's name: `full`, masked (张三 -> 张*) or omitted")
			cert := certFlags(fs)
			var lifetime days
			fs.Var(&lifetime, "secret-lifetime", "how long each App_Secret is valid (`DURATION`: 90d, 720h; 0: the server default)")
			var signingKeyFiles stringList
			fs.Var(&signingKeyFiles, "signing-key", "request signing public key (PEM `file`); repeatable")
			requireSig := fs.Bool("require-signatures", false, "every AuthService and AuthzService call must be signed")
			ipOnly := fs.Bool("legacy-ip-only", false, "the legacy Hessian/SOAP authenticate may name it by type and code, from an allowed address, without App_ID and secret")
			access := addAccessFlags(fs)
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				keys, err := readSigningKeys(signingKeyFiles)
				if err != nil {
					return err
				}
				if err := required("type", *typ, "code", *code, "name", *name); err != nil {
					return err
				}
				fp, _, err := cert.fingerprint()
				if err != nil {
					return err
				}
				cidrs, err := checkCIDRs(allow)
				if err != nil {
					return err
				}
				if *rate < 0 || math.IsNaN(*rate) || math.IsInf(*rate, 0) {
					return usagef("--rate must be a non-negative number")
				}
				if *burst < 0 || *burst > math.MaxInt32 {
					return usagef("--burst must be between 0 and %d", math.MaxInt32)
				}
				req := &identityv1.CreateAppRequest{AppType: *typ, AppCode: *code, Name: *name, IpAllowList: cidrs,
					RateLimit: *rate, RateBurst: int32(*burst), MaxConcurrent: int32(*maxConc), ClientCertSha256: fp, SecretLifetimeSeconds: lifetime.seconds(),
					SigningKeys: keys, RequireSignedRequests: *requireSig, LegacyIpOnly: *ipOnly}
				if err := checkNameRelease(*nameRel); err != nil {
					return err
				}
				req.NameRelease = *nameRel

				if err := access.applyCreate(req); err != nil {
					return err
				}
				return sessionCall(a, func(s *session) (*identityv1.CreateAppResponse, error) { return s.client.CreateApp(s.ctx, req) }, secretTable)
			}
		},
	}
}

// checkCIDRs validates --allow values; a bare address becomes a /32 or /128.
func checkCIDRs(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, v := range in {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if p, err := netip.ParsePrefix(part); err == nil {
				out = append(out, p.String())
				continue
			}
			if ip, err := netip.ParseAddr(part); err == nil {
				out = append(out, netip.PrefixFrom(ip, ip.BitLen()).String())
				continue
			}
			return nil, usagef("--allow %q is not a CIDR (like 10.0.0.0/8) or an IP address", part)
		}
	}
	return out, nil
}

func appListCmd() command {
	return listVerb("[--type T] [--query Q] [--secret-expiring 30d]", identityMaxPage, func(_ *app, fs *flag.FlagSet) pageFetch[*identityv1.App] {
		typ := fs.String("type", "", "only applications of this `type`")
		query := fs.String("query", "", "match code or name (substring)")
		var expiring days
		fs.Var(&expiring, "secret-expiring", "only applications whose App_Secret expires within `DURATION` (30d, 72h), the expired included (0: expired only)")
		return func(s *session, size int32, tok string) ([]*identityv1.App, string, error) {
			req := &identityv1.ListAppsRequest{PageSize: size, PageToken: tok, AppType: *typ, Query: *query}
			if expiring.set {
				req.SecretExpiresWithinSeconds = proto.Int64(expiring.seconds())
			}
			r, err := s.client.ListApps(s.ctx, req)
			return r.GetApps(), r.GetNextPageToken(), err
		}
	}, func(apps []*identityv1.App, next string) proto.Message {
		return &identityv1.ListAppsResponse{Apps: apps, NextPageToken: next}
	}, appRows)
}

func appGetCmd() command {
	return idVerb(func(s *session, id string) (*identityv1.App, error) {
		return s.client.GetApp(s.ctx, &identityv1.GetAppRequest{Id: id})
	}, appTable)
}

func appUpdateCmd() command {
	return command{
		usage: "ID [--name N] [--allow CIDR]... [--allow-any] [--rate R] [--burst B] [--max-concurrent N] [--client-cert FILE | --client-cert-sha256 HEX | --no-client-cert] [--secret-lifetime 90d] [--signing-key FILE.pem]... [--no-signing-keys] [--require-signatures | --no-signatures] [--grant-api LIST] [--access-from DATE] [--access-until DATE] [--security-level A1|A2] [--min-auth-level any|two-factor|certificate] [--legacy-ip-only | --no-legacy-ip-only] [--name-release full|masked|omitted]",
		help: "Only the flags given are changed. --allow replaces the whole allow-list;\n" +
			"--allow-any empties it (calls from any address). Use suspend/activate for the status.\n" +
			"--client-cert binds the application to its client certificate; --no-client-cert removes the binding.\n" +
			"--secret-lifetime (0: the server default) recomputes the current secret's expiry from when it was issued:\n" +
			"a lifetime shorter than the secret's age is refused (SECRET_LIFETIME_TOO_SHORT: rotate-secret first).\n" +
			"--signing-key (repeatable, at most 2) replaces the application's request signing keys with these\n" +
			"public keys (PEM PUBLIC KEY files); to roll a key over give the old and the new one, later the new one\n" +
			"alone; --no-signing-keys removes them. --require-signatures makes every AuthService and AuthzService call of the\n" +
			"application be signed; --no-signatures makes signing optional again (docs/operators.md).\n" +
			"--grant-api replaces the interfaces the application may call (\"all\": every one); --access-from and\n" +
			"--access-until set its access period (\"\" opens that end).\n" +
			"--legacy-ip-only lets the legacy Hessian/SOAP authenticate name the application by type and code alone,\n" +
			"from an address on its (non-empty) allow-list, without App_ID and secret; --no-legacy-ip-only ends it.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			name := fs.String("name", "", "application `name`")
			var signingKeyFiles stringList
			fs.Var(&signingKeyFiles, "signing-key", "request signing public key (PEM `file`); repeatable; replaces the keys")
			noKeys := fs.Bool("no-signing-keys", false, "remove the request signing keys")
			requireSig := fs.Bool("require-signatures", false, "every AuthService and AuthzService call must be signed")
			noSig := fs.Bool("no-signatures", false, "signed requests are no longer required")
			ipOnly := fs.Bool("legacy-ip-only", false, "the legacy Hessian/SOAP authenticate may name it by type and code, from an allowed address, without App_ID and secret")
			noIPOnly := fs.Bool("no-legacy-ip-only", false, "legacy calls must carry App_ID and secret again")
			var allow stringList
			fs.Var(&allow, "allow", "allowed caller network (`CIDR`); repeatable; replaces the list")
			allowAny := fs.Bool("allow-any", false, "empty the allow-list: calls from any address")
			rate := fs.Float64("rate", 0, "requests per second (0: no limit)")
			burst := fs.Int("burst", 0, "rate limit burst")
			maxConc := fs.Int("max-concurrent", 0, "at most `N` calls in progress at once (0: no bound)")
			nameRel := fs.String("name-release", "", "what Authenticate answers of the person's name: `full`, masked (张三 -> 张*) or omitted")
			cert := certFlags(fs)
			noCert := fs.Bool("no-client-cert", false, "remove the client certificate binding")
			var lifetime days
			fs.Var(&lifetime, "secret-lifetime", "how long each App_Secret is valid (`DURATION`: 90d, 720h; 0: the server default)")
			access := addAccessFlags(fs)
			return func(args []string) error {
				if err := wantArgs(args, "ID"); err != nil {
					return err
				}
				set := map[string]bool{}
				fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
				fp, given, err := cert.fingerprint()
				if err != nil {
					return err
				}
				req := &identityv1.UpdateAppRequest{Id: args[0], Name: *name, RateLimit: *rate, RateBurst: int32(*burst),
					ClientCertSha256: fp}
				switch {
				case given && *noCert:
					return usagef("--no-client-cert excludes --client-cert and --client-cert-sha256")
				case given || *noCert:
					req.UpdateMask = append(req.UpdateMask, "client_cert_sha256")
				}
				if set["name"] {
					req.UpdateMask = append(req.UpdateMask, "name")
				}
				switch {
				case set["allow"] && *allowAny:
					return usagef("--allow and --allow-any exclude each other")
				case set["allow"]:
					cidrs, err := checkCIDRs(allow)
					if err != nil {
						return err
					}
					req.IpAllowList = cidrs
					req.UpdateMask = append(req.UpdateMask, "ip_allow_list")
				case *allowAny:
					req.UpdateMask = append(req.UpdateMask, "ip_allow_list")
				}
				if set["rate"] {
					if *rate < 0 || math.IsNaN(*rate) || math.IsInf(*rate, 0) {
						return usagef("--rate must be a non-negative number")
					}
					req.UpdateMask = append(req.UpdateMask, "rate_limit")
				}
				if set["burst"] {
					if *burst < 0 || *burst > math.MaxInt32 {
						return usagef("--burst must be between 0 and %d", math.MaxInt32)
					}
					req.UpdateMask = append(req.UpdateMask, "rate_burst")
				}
				if set["max-concurrent"] {
					if *maxConc < 0 || *maxConc > 1000000 {
						return usagef("--max-concurrent must be between 0 (no bound) and 1000000")
					}
					req.MaxConcurrent = int32(*maxConc)
					req.UpdateMask = append(req.UpdateMask, "max_concurrent")
				}
				if set["name-release"] {
					if err := checkNameRelease(*nameRel); err != nil {
						return err
					}
					req.NameRelease = *nameRel
					req.UpdateMask = append(req.UpdateMask, "name_release")
				}
				if lifetime.set {
					req.SecretLifetimeSeconds = lifetime.seconds()
					req.UpdateMask = append(req.UpdateMask, "secret_lifetime_seconds")
				}
				switch {
				case set["signing-key"] && *noKeys:
					return usagef("--signing-key and --no-signing-keys exclude each other")
				case set["signing-key"]:
					keys, err := readSigningKeys(signingKeyFiles)
					if err != nil {
						return err
					}
					req.SigningKeys = keys
					req.UpdateMask = append(req.UpdateMask, "signing_keys")
				case *noKeys:
					req.UpdateMask = append(req.UpdateMask, "signing_keys")
				}
				switch {
				case *requireSig && *noSig:
					return usagef("--require-signatures and --no-signatures exclude each other")
				case *requireSig || *noSig:
					req.RequireSignedRequests = *requireSig
					req.UpdateMask = append(req.UpdateMask, "require_signed_requests")
				}
				switch {
				case *ipOnly && *noIPOnly:
					return usagef("--legacy-ip-only and --no-legacy-ip-only exclude each other")
				case *ipOnly || *noIPOnly:
					req.LegacyIpOnly = *ipOnly
					req.UpdateMask = append(req.UpdateMask, "legacy_ip_only")
				}
				if err := access.applyUpdate(req, set); err != nil {
					return err
				}
				if len(req.UpdateMask) == 0 {
					return usagef("nothing to update: give at least one of --name, --allow, --allow-any, --rate, --burst, --client-cert, --no-client-cert, --secret-lifetime, --signing-key, --no-signing-keys, --require-signatures, --no-signatures, --grant-api, --access-from, --access-until, --security-level, --min-auth-level, --legacy-ip-only, --no-legacy-ip-only, --name-release")
				}
				return sessionCall(a, func(s *session) (*identityv1.App, error) { return s.client.UpdateApp(s.ctx, req) }, appTable)
			}
		},
	}
}

func appStatusCmd(st identityv1.AppStatus) command {
	return idVerb(func(s *session, id string) (*identityv1.App, error) {
		return s.client.UpdateApp(s.ctx, &identityv1.UpdateAppRequest{Id: id, UpdateMask: []string{"status"}, Status: st})
	}, appTable)
}

func appRotateCmd() command {
	return verb("ID [--overlap 24h]", "Issues a new App_Secret (shown only once); the old one keeps working for --overlap (0: stops at once).",
		[]string{"ID"}, func(_ *app, fs *flag.FlagSet) prepared[*identityv1.CreateAppResponse] {
			overlap := fs.Duration("overlap", 24*time.Hour, "how long the previous secret stays valid")
			return func(args []string) (func(s *session) (*identityv1.CreateAppResponse, error), error) {
				if *overlap < 0 {
					return nil, usagef("--overlap must not be negative")
				}
				return func(s *session) (*identityv1.CreateAppResponse, error) {
					return s.client.RotateAppSecret(s.ctx, &identityv1.RotateAppSecretRequest{
						Id: args[0], OverlapSeconds: proto.Int64(int64(overlap.Seconds())),
					})
				}, nil
			}
		}, secretTable)
}

// ---- link ----

func linkCreateCmd() command {
	return verb("--user ID --app ID --account ACCOUNT", "", nil, func(_ *app, fs *flag.FlagSet) prepared[*identityv1.AccountLink] {
		user := fs.String("user", "", "user `ID`")
		appID := fs.String("app", "", "App_ID")
		account := fs.String("account", "", "the user's `account` id inside the application")
		return func([]string) (func(s *session) (*identityv1.AccountLink, error), error) {
			if err := required("user", *user, "app", *appID, "account", *account); err != nil {
				return nil, err
			}
			return func(s *session) (*identityv1.AccountLink, error) {
				return s.client.CreateAccountLink(s.ctx, &identityv1.CreateAccountLinkRequest{UserId: *user, AppId: *appID, AppAccountId: *account})
			}, nil
		}
	}, linkTable)
}

func linkListCmd() command {
	return listVerb("[--user ID] [--app ID]", identityMaxPage, func(_ *app, fs *flag.FlagSet) pageFetch[*identityv1.AccountLink] {
		user := fs.String("user", "", "only links of this user `ID`")
		appID := fs.String("app", "", "only links to this App_ID")
		return func(s *session, size int32, tok string) ([]*identityv1.AccountLink, string, error) {
			r, err := s.client.ListAccountLinks(s.ctx, &identityv1.ListAccountLinksRequest{PageSize: size, PageToken: tok, UserId: *user, AppId: *appID})
			return r.GetLinks(), r.GetNextPageToken(), err
		}
	}, func(links []*identityv1.AccountLink, next string) proto.Message {
		return &identityv1.ListAccountLinksResponse{Links: links, NextPageToken: next}
	}, linkRows)
}

func userDeleteCmd() command {
	return confirmedDeleteCmd("user",
		"Deletes the person for good, with their account links, fingerprints, group memberships and\n"+
			"administrator tokens; their SSO sessions end and provisioned business systems are told. The audit\n"+
			"log keeps what they did. To keep them, use user disable. --yes confirms.",
		"deleting a person cannot be undone: add --yes (or use user disable to keep them)",
		func(s *session, id string) (proto.Message, error) {
			return s.client.DeleteUser(s.ctx, &identityv1.DeleteUserRequest{Id: id})
		})
}

// deleteCmd is `<noun> delete ID`: del deletes, the table says so.
func deleteCmd(noun, help string, del func(*session, string) (proto.Message, error)) command {
	return confirmedDeleteCmd(noun, help, "", del)
}

// confirmedDeleteCmd is deleteCmd that, with a refusal, needs --yes
// (refusal is the usage error without it).
func confirmedDeleteCmd(noun, help, refusal string, del func(*session, string) (proto.Message, error)) command {
	usage := "ID"
	if refusal != "" {
		usage = "ID --yes"
	}
	return command{
		usage: usage,
		help:  help,
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			yes := refusal == ""
			if !yes {
				fs.BoolVar(&yes, "yes", false, "confirm the deletion (it cannot be undone)")
			}
			return func(args []string) error {
				if err := wantArgs(args, "ID"); err != nil {
					return err
				}
				if !yes {
					return usagef("%s", refusal)
				}
				return a.withSession(func(s *session) error {
					r, err := del(s, args[0])
					if err != nil {
						return err
					}
					return a.output(r, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "Deleted %s %s.\n", noun, args[0]) })
				})
			}
		},
	}
}

func appDeleteCmd() command {
	return confirmedDeleteCmd("application",
		"Deletes a suspended application for good (app suspend first), with its secrets, account links and\n"+
			"fingerprint bypass setting; its CAS services, authorization model and subscriptions go too. The audit\n"+
			"log keeps what it did. To keep it, leave it suspended. --yes confirms.",
		"deleting an application cannot be undone: add --yes (or leave it suspended to keep it)",
		func(s *session, id string) (proto.Message, error) {
			return s.client.DeleteApp(s.ctx, &identityv1.DeleteAppRequest{Id: id})
		})
}

func linkDeleteCmd() command {
	return deleteCmd("account link", "", func(s *session, id string) (proto.Message, error) {
		return s.client.DeleteAccountLink(s.ctx, &identityv1.DeleteAccountLinkRequest{Id: id})
	})
}

// readSigningKeys reads request signing public keys from PEM files. A
// private key is refused here, before anything is sent: the server never
// holds it.
func readSigningKeys(files []string) ([][]byte, error) {
	if len(files) > 2 {
		return nil, usagef("at most 2 --signing-key (the key being rolled over and its successor)")
	}
	var keys [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, usagef("--signing-key: %v", err)
		}
		if bytes.Contains(b, []byte("PRIVATE KEY")) || looksLikePrivateDER(b) {
			return nil, usagef("--signing-key %s holds a private key: give the public key (openssl pkey -in KEY -pubout), and keep the private key with the application", f)
		}
		keys = append(keys, b)
	}
	return keys, nil
}

// looksLikePrivateDER reports whether b is a DER private key (PKCS#8,
// PKCS#1, SEC 1), which must not leave the machine either.
func looksLikePrivateDER(b []byte) bool {
	if _, err := x509.ParsePKCS8PrivateKey(b); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PrivateKey(b); err == nil {
		return true
	}
	_, err := x509.ParseECPrivateKey(b)
	return err == nil
}

// certFlag is --client-cert FILE / --client-cert-sha256 HEX.
type certFlag struct{ file, sha256 *string }

func certFlags(fs *flag.FlagSet) certFlag {
	return certFlag{
		file:   fs.String("client-cert", "", "PEM `file` of the application's client certificate (App_ID + certificate)"),
		sha256: fs.String("client-cert-sha256", "", "SHA-256 fingerprint (`hex`) of the application's client certificate"),
	}
}

// fingerprint returns the SHA-256 fingerprint the flags name (hex; the
// server checks the form) and whether one was given.
func (c certFlag) fingerprint() (string, bool, error) {
	switch {
	case *c.file != "" && *c.sha256 != "":
		return "", false, usagef("--client-cert and --client-cert-sha256 exclude each other")
	case *c.sha256 != "":
		return *c.sha256, true, nil
	case *c.file == "":
		return "", false, nil
	}
	b, err := os.ReadFile(*c.file)
	if err != nil {
		return "", false, usagef("--client-cert: %v", err)
	}
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return "", false, usagef("--client-cert: %s holds no PEM CERTIFICATE", *c.file)
		}
		if blk.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				return "", false, usagef("--client-cert: %s: %v", *c.file, err)
			}
			sum := sha256.Sum256(blk.Bytes)
			return hex.EncodeToString(sum[:]), true, nil
		}
	}
}

// checkNameRelease checks --name-release ("": not given, full).
func checkNameRelease(v string) error {
	switch v {
	case "", "full", "masked", "omitted":
		return nil
	}
	return usagef("--name-release must be full, masked or omitted, got %q", v)
}
