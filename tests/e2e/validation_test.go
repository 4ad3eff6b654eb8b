package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// rawCodec sends a request as the bytes given and decodes the answer as
// usual: a client that sends what generated Go code refuses to encode (a
// string that is not UTF-8, or no protobuf at all).
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

func (rawCodec) Name() string { return "proto" }

// rawInvoke calls method with req as the request's wire bytes.
func (e *env) rawInvoke(ctx context.Context, method string, req []byte, resp proto.Message) error {
	return e.conn.Invoke(ctx, method, req, resp, grpc.ForceCodecV2(rawCodec{}))
}

// withString is m encoded, then field (a string field of m, by name) once
// more holding s: the last occurrence wins when decoding, so this is m with
// that field set to s, even when s is not UTF-8.
func withString(m proto.Message, field, s string) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	fd := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(field))
	return protowire.AppendString(protowire.AppendTag(b, fd.Number(), protowire.BytesType), s)
}

// withMapEntry is m encoded plus the entry key=value in its map<string,
// string> field.
func withMapEntry(m proto.Message, field, key, value string) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	fd := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(field))
	entry := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), key)
	entry = protowire.AppendString(protowire.AppendTag(entry, 2, protowire.BytesType), value)
	return protowire.AppendBytes(protowire.AppendTag(b, fd.Number(), protowire.BytesType), entry)
}

// wantBadRequest checks the answer to a malformed request: INVALID_ARGUMENT,
// reason BAD_REQUEST, legacy code -5, the field in the ErrorInfo and named
// at the start of the message (unless field is ""), plus each of mention.
func wantBadRequest(t *testing.T, label string, err error, field string, mention ...string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Errorf("%s: want InvalidArgument, got %v", label, err)
		return
	}
	ei := errorInfo(st)
	if ei == nil || ei.GetReason() != "BAD_REQUEST" || ei.GetMetadata()["legacy_code"] != "-5" {
		t.Errorf("%s: want reason BAD_REQUEST with legacy_code -5, got %v", label, ei)
		return
	}
	if got := ei.GetMetadata()["field"]; got != field {
		t.Errorf("%s: ErrorInfo field = %q, want %q (%s)", label, got, field, st.Message())
	}
	if field != "" && !strings.HasPrefix(st.Message(), field) {
		t.Errorf("%s: message %q does not start with the field %q", label, st.Message(), field)
	}
	for _, m := range mention {
		if !strings.Contains(st.Message(), m) {
			t.Errorf("%s: message %q does not mention %q", label, st.Message(), m)
		}
	}
}

// TestRequestValidation sends malformed requests to several RPCs over real
// gRPC and REST: strings that are not UTF-8 (sent raw), too long, with
// control characters, in a bad format, missing, and messages that are not
// protobuf at all. Each is refused before its handler with
// INVALID_ARGUMENT / 400, legacy code -5 and the field named.
func TestRequestValidation(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("val", "vera", nil, nil)
	long := func(n int) string { return strings.Repeat("a", n) }
	authReq := func(mod func(*identityv1.AuthenticateRequest)) *identityv1.AuthenticateRequest {
		r := &identityv1.AuthenticateRequest{AppUserId: f.account, Password: f.password, AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD}
		if mod != nil {
			mod(r)
		}
		return r
	}
	const (
		authMethod      = "/uias.identity.v1.AuthService/Authenticate"
		createOrgMethod = "/uias.identity.v1.AdminService/CreateOrg"
		getUserMethod   = "/uias.identity.v1.AdminService/GetUser"
	)
	orgReq := &identityv1.CreateOrgRequest{Code: "branch", Name: "Branch", ParentId: e.root}

	grpcCases := []struct {
		name    string
		field   string
		mention []string
		call    func() error
	}{
		{"Authenticate app_user_id too long", "app_user_id", []string{"too long (at most 128 bytes)"}, func() error {
			_, err := e.auth.Authenticate(f.ctx(), authReq(func(r *identityv1.AuthenticateRequest) { r.AppUserId = long(129) }))
			return err
		}},
		{"Authenticate app_user_id missing", "app_user_id", []string{"is required"}, func() error {
			_, err := e.auth.Authenticate(f.ctx(), authReq(func(r *identityv1.AuthenticateRequest) { r.AppUserId = "" }))
			return err
		}},
		{"Authenticate app_user_id NUL", "app_user_id", []string{"control characters"}, func() error {
			_, err := e.auth.Authenticate(f.ctx(), authReq(func(r *identityv1.AuthenticateRequest) { r.AppUserId = "al\x00ice" }))
			return err
		}},
		{"Authenticate app_user_id not UTF-8", "app_user_id", []string{"not valid UTF-8"}, func() error {
			return e.rawInvoke(f.ctx(), authMethod, withString(authReq(nil), "app_user_id", "al\xffice"), &identityv1.AuthenticateResponse{})
		}},
		{"Authenticate password not UTF-8", "password", []string{"not valid UTF-8"}, func() error {
			return e.rawInvoke(f.ctx(), authMethod, withString(authReq(nil), "password", "p\xc3\x28"), &identityv1.AuthenticateResponse{})
		}},
		{"Authenticate password too long", "password", []string{"at most 1024 bytes"}, func() error {
			_, err := e.auth.Authenticate(f.ctx(), authReq(func(r *identityv1.AuthenticateRequest) { r.Password = long(100000) }))
			return err
		}},
		{"Authenticate fingerprint too large", "fingerprint_feature", []string{"at most 65536 bytes"}, func() error {
			_, err := e.auth.Authenticate(f.ctx(), authReq(func(r *identityv1.AuthenticateRequest) {
				r.AuthType, r.FingerprintFeature = identityv1.AuthType_AUTH_TYPE_FINGERPRINT, make([]byte, 65537)
			}))
			return err
		}},
		{"Authenticate extend_info bad name", "extend_info", []string{`key "bad key"`, "letters, digits"}, func() error {
			_, err := e.auth.Authenticate(f.ctx(), authReq(func(r *identityv1.AuthenticateRequest) { r.ExtendInfo = map[string]string{"bad key": "1"} }))
			return err
		}},
		{"Authenticate extend_info value with a line break", "extend_info", []string{`["terminal"]`, "control characters"}, func() error {
			_, err := e.auth.Authenticate(f.ctx(), authReq(func(r *identityv1.AuthenticateRequest) {
				r.ExtendInfo = map[string]string{"terminal": "T1\nforged=1"}
			}))
			return err
		}},
		{"Authenticate extend_info value not UTF-8", "extend_info", []string{"not valid UTF-8"}, func() error {
			return e.rawInvoke(f.ctx(), authMethod, withMapEntry(authReq(nil), "extend_info", "k", "\xff"), &identityv1.AuthenticateResponse{})
		}},
		{"Authenticate extend_info_legacy with ESC", "extend_info_legacy", []string{"control characters"}, func() error {
			_, err := e.auth.Authenticate(f.ctx(), authReq(func(r *identityv1.AuthenticateRequest) { r.ExtendInfoLegacy = "a=\x1b[2J" }))
			return err
		}},
		{"Authenticate not protobuf", "", []string{"not a valid uias.identity.v1.AuthenticateRequest message"}, func() error {
			return e.rawInvoke(f.ctx(), authMethod, []byte{0x1a, 0x40, 'x'}, &identityv1.AuthenticateResponse{})
		}},
		{"ChangePassword new_password too long", "new_password", []string{"too long"}, func() error {
			_, err := e.auth.ChangePassword(f.ctx(), &identityv1.ChangePasswordRequest{AppUserId: f.account,
				OldPassword: f.password, NewPassword: long(1025)})
			return err
		}},
		{"AdminLogin login_name with CR LF", "login_name", []string{"control characters"}, func() error {
			_, err := e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "admin\r\n", Password: adminPassword})
			return err
		}},
		{"CreateOrg code format", "code", []string{"1-64 letters, digits"}, func() error {
			_, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "bad code", Name: "x", ParentId: e.root})
			return err
		}},
		{"CreateOrg name with ESC", "name", []string{"control characters"}, func() error {
			_, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "esc", Name: "\x1b[31mRed", ParentId: e.root})
			return err
		}},
		{"CreateOrg name not UTF-8", "name", []string{"not valid UTF-8"}, func() error {
			return e.rawInvoke(e.adm(), createOrgMethod, withString(orgReq, "name", "Bad\xc0name"), &identityv1.Org{})
		}},
		{"CreateOrg not protobuf", "", []string{"not a valid uias.identity.v1.CreateOrgRequest message"}, func() error {
			return e.rawInvoke(e.adm(), createOrgMethod, []byte{0xff, 0xff, 0xff, 0xff}, &identityv1.Org{})
		}},
		{"CreateUser display_name too long", "display_name", []string{"at most 256 bytes"}, func() error {
			_, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "longname", DisplayName: long(257), OrgId: e.root})
			return err
		}},
		{"CreateUser email too long", "email", []string{"at most 254 bytes"}, func() error {
			_, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "longmail", DisplayName: "x",
				OrgId: e.root, Email: long(250) + "@x.cn"})
			return err
		}},
		{"ListUsers query with C1 control", "query", []string{"control characters"}, func() error {
			_, err := e.admin.ListUsers(e.adm(), &identityv1.ListUsersRequest{Query: "ab\u0085c"})
			return err
		}},
		{"GetUser id not UTF-8", "id", []string{"not valid UTF-8"}, func() error {
			return e.rawInvoke(e.adm(), getUserMethod, withString(&identityv1.GetUserRequest{Id: f.userID}, "id", "\xfe"), &identityv1.User{})
		}},
		{"UpdateUser update_mask with tab", "update_mask", []string{"update_mask[0]", "control characters"}, func() error {
			_, err := e.admin.UpdateUser(e.adm(), &identityv1.UpdateUserRequest{Id: f.userID, UpdateMask: []string{"display_name\t"}, DisplayName: "x"})
			return err
		}},
		{"CreateApp ip_allow_list too many", "ip_allow_list", []string{"too many entries (at most 256)"}, func() error {
			ips := make([]string, 257)
			for i := range ips {
				ips[i] = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
			}
			_, err := e.admin.CreateApp(e.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "many", Name: "x", IpAllowList: ips})
			return err
		}},
		{"AddGroupMember user_id missing", "user_id", []string{"is required"}, func() error {
			_, err := e.admin.AddGroupMember(e.adm(), &identityv1.GroupMemberRequest{GroupId: "g1"})
			return err
		}},
		{"CreateAccountLink app_account_id too long", "app_account_id", []string{"too long"}, func() error {
			_, err := e.admin.CreateAccountLink(e.adm(), &identityv1.CreateAccountLinkRequest{UserId: f.userID,
				AppId: f.appID, AppAccountId: long(129)})
			return err
		}},
	}
	for _, c := range grpcCases {
		wantBadRequest(t, c.name, c.call(), c.field, c.mention...)
	}

	admin := map[string]string{"Authorization": "Bearer " + e.token}
	restCases := []struct {
		name, method, path string
		headers            map[string]string
		body               any
		field              string
		mention            string
	}{
		{"authenticate app_user_id too long", "POST", "/v1/authenticate", appHeaders(f),
			map[string]any{"app_user_id": long(200), "password": f.password, "auth_type": 1}, "app_user_id", "too long"},
		{"authenticate app_user_id with NUL", "POST", "/v1/authenticate", appHeaders(f),
			map[string]any{"app_user_id": "al\u0000ice", "password": f.password, "auth_type": 1}, "app_user_id", "control characters"},
		{"admin login name with line feed", "POST", "/v1/admin/login", nil,
			map[string]any{"login_name": "admin\n", "password": adminPassword}, "login_name", "control characters"},
		{"create org name with BEL", "POST", "/v1/orgs", admin,
			map[string]any{"code": "bell", "name": "Bell\u0007", "parent_id": e.root}, "name", "control characters"},
		{"create user display_name too long", "POST", "/v1/users", admin,
			map[string]any{"login_name": "restlong", "display_name": long(300), "org_id": e.root}, "display_name", "at most 256 bytes"},
		{"list users query with control", "GET", "/v1/users?query=%07", admin, nil, "query", "control characters"},
		{"list users query not UTF-8", "GET", "/v1/users?query=%FF", admin, nil, "query", "not valid UTF-8"},
		{"get user id not UTF-8", "GET", "/v1/users/%C3%28", admin, nil, "id", "not valid UTF-8"},
		{"remove member user_id not UTF-8", "DELETE", "/v1/groups/g1/members/%FF", admin, nil, "user_id", "not valid UTF-8"},
	}
	for _, c := range restCases {
		code, body, _ := e.rest(c.method, c.path, c.headers, c.body)
		if code != http.StatusBadRequest {
			t.Errorf("REST %s: status %d, want 400 (%v)", c.name, code, body)
			continue
		}
		msg, _ := body["message"].(string)
		var meta map[string]any
		var reason string
		if details, _ := body["details"].([]any); len(details) > 0 {
			d, _ := details[0].(map[string]any)
			meta, _ = d["metadata"].(map[string]any)
			reason, _ = d["reason"].(string)
		}
		if body["code"] != float64(codes.InvalidArgument) || reason != "BAD_REQUEST" || meta["legacy_code"] != "-5" || meta["field"] != c.field {
			t.Errorf("REST %s: want code 3, BAD_REQUEST, legacy_code -5, field %s; got %v", c.name, c.field, body)
		}
		if !strings.HasPrefix(msg, c.field) || !strings.Contains(msg, c.mention) {
			t.Errorf("REST %s: message %q should name %s and mention %q", c.name, msg, c.field, c.mention)
		}
	}

	// Each malformed Authenticate (14 above, after its caller was
	// authenticated) is a failed login in the audit log, as when the
	// service refused one itself.
	nc, err := e.app.ConnectNATS() // in memory: the embedded NATS has no port
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	badLogins := func() (n int) {
		for _, ev := range streamEventsConn(t, nc, "AUDIT", "uias.audit.identity.authenticate") {
			if ev["result"] == "failure" && ev["reason"] == "BAD_REQUEST" && ev["app_id"] == f.appID {
				n++
			}
		}
		return n
	}
	eventually(t, "14 BAD_REQUEST login audit events", func() bool { return badLogins() == 14 })

	// None of them reached a handler: nothing was created, and well-formed
	// requests still work.
	orgs, err := e.admin.ListOrgs(e.adm(), &identityv1.ListOrgsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range orgs.GetOrgs() {
		if o.GetCode() != "root" {
			t.Errorf("an org was created by a bad request: %v", o)
		}
	}
	res, err := e.authPW(f, f.account, f.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	if _, err := e.admin.CreateOrg(e.adm(), orgReq); err != nil {
		t.Errorf("well-formed CreateOrg: %v", err)
	}
}
