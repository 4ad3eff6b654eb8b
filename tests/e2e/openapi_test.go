package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/uias/uias/gateway"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// servedOpenAPI is the part of /openapi.json a client generator uses to
// decide which credentials to send.
type servedOpenAPI struct {
	Paths map[string]map[string]struct {
		OperationID string                 `json:"operationId"`
		Security    *[]map[string][]string `json:"security"`
		RequestBody any                    `json:"requestBody"`
	} `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type, In, Name, Scheme string
		} `json:"securitySchemes"`
	} `json:"components"`
}

// TestOpenAPISecurityIsTrue calls every operation of the served OpenAPI
// document on a real monolithic deployment, as a generated client would:
// without credentials an operation that declares security is refused with
// 401 by the caller check, and with the credentials its security schemes
// name, placed where they say, it passes that check. Public operations pass
// it without credentials.
func TestOpenAPISecurityIsTrue(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	// Granted every interface, "directory" included (granted only by name).
	f := e.seed("oa3", "olga", &identityv1.CreateAppRequest{GrantedApis: []string{"authenticate", "change_password", "authz.check",
		"authz.subjects", "sso", "oidc", "directory"}}, nil)
	credentials := map[string]string{
		"X-Uias-App-Id":     f.appID,
		"X-Uias-App-Secret": f.secret,
		"bearer":            e.token,
	}
	// The audit log's backups are the security auditor's (the system
	// administrator's token is refused there by authz, not by the caller
	// check): the auditor calls every audit path.
	auditorToken := e.grantedAdmin(t, "auditor-openapi", "security_auditor")

	resp, err := http.Get(e.http + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %v", resp.StatusCode, err)
	}
	var doc servedOpenAPI
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	// Caller-check failures: the ErrorInfo reasons of missing or wrong
	// application credentials and administrator tokens.
	callerRefused := func(code int, out map[string]any) bool {
		if code != http.StatusUnauthorized {
			return false
		}
		r := fmt.Sprint(out["details"])
		return regexp.MustCompile(`BAD_APP_CREDENTIALS|BAD_ADMIN_TOKEN`).MatchString(r)
	}

	ops := 0
	for path, item := range doc.Paths {
		// Path parameters: an id no object has (an integer where one is due).
		target := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(path, func(p string) string {
			if p == "{position}" {
				return "1"
			}
			return "no-such-id"
		})
		for m, op := range item {
			ops++
			method := map[string]string{"get": "GET", "post": "POST", "put": "PUT", "patch": "PATCH", "delete": "DELETE"}[m]
			var body any
			if op.RequestBody != nil {
				body = map[string]any{}
			}
			if op.Security == nil {
				t.Errorf("%s %s: no security stated", method, path)
				continue
			}
			code, out, _ := e.rest(method, target, nil, body)
			if len(*op.Security) == 0 {
				if callerRefused(code, out) {
					t.Errorf("%s (public) without credentials: refused by the caller check: %d %v", op.OperationID, code, out)
				}
				continue
			}
			if !callerRefused(code, out) {
				t.Errorf("%s without credentials: %d %v, want 401 from the caller check", op.OperationID, code, out)
			}
			hdr := map[string]string{}
			for name := range (*op.Security)[0] {
				s := doc.Components.SecuritySchemes[name]
				switch {
				case s.Type == "apiKey" && s.In == "header":
					hdr[s.Name] = credentials[s.Name]
				case s.Type == "http" && s.Scheme == "bearer":
					hdr["Authorization"] = "Bearer " + credentials["bearer"]
					if strings.HasPrefix(path, "/v1/audit/") {
						hdr["Authorization"] = "Bearer " + auditorToken
					}
					if op.OperationID == "AdminService_AdminLogout" {
						// Logout ends its token: it gets one of its own.
						e.login()
						hdr["Authorization"] = "Bearer " + e.token
					}
				default:
					t.Fatalf("scheme %s: %+v", name, s)
				}
			}
			if code, out, _ := e.rest(method, target, hdr, body); code == http.StatusUnauthorized || code == http.StatusForbidden {
				t.Errorf("%s with the credentials the document names (%v): %d %v", op.OperationID, (*op.Security)[0], code, out)
			}
		}
	}
	if ops < 20 {
		t.Fatalf("only %d operations in /openapi.json", ops)
	}

	// A known path with the wrong method: 405 with Allow.
	code, out, h := e.rest("GET", "/v1/authenticate", nil, nil)
	if code != http.StatusMethodNotAllowed || h.Get("Allow") != "POST" || out["message"] == nil {
		t.Errorf("GET /v1/authenticate: %d Allow %q %v", code, h.Get("Allow"), out)
	}
}

// TestOpenAPIInterfaceIDs: a real deployment with
// gateway.institution_code publishes a uniform interface id (U_API_ID,
// JR/T 0185 Appendix B) on every operation business systems call
// (identity's and authz's application interfaces), 24 characters with the
// institution's code, each once; administrators' operations carry none.
func TestOpenAPIInterfaceIDs(t *testing.T) {
	cfg := testConfig(t.TempDir())
	gateway.Settings(&cfg).InstitutionCode = "C10010"
	e := start(t, cfg)
	resp, err := http.Get(e.http + "/openapi.json")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %v %v", resp, err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			UAPI        string `json:"x-u-api-id"`
		} `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	seen := map[string]bool{}
	for _, item := range doc.Paths {
		for _, op := range item {
			if op.UAPI == "" {
				continue
			}
			if len(op.UAPI) != 24 || !strings.HasPrefix(op.UAPI, "OPC10010") || !strings.HasSuffix(op.UAPI, "00") || seen[op.UAPI] {
				t.Errorf("%s: %q", op.OperationID, op.UAPI)
			}
			seen[op.UAPI] = true
			got[op.OperationID] = op.UAPI
		}
	}
	want := map[string]string{
		"AuthService_Authenticate":   "OPC100100208010100000100",
		"DirectoryService_ListOrgs":  "OPC100100108010100000600",
		"AuthzService_Check":         "OPC100100108010200000100",
		"AuthzService_ListSubjects":  "OPC100100208010200000400",
		"AuthService_ChangePassword": "OPC100100208010100000200",
		// ADR 0033
		"AuthService_GetCertificateChallenge": "OPC100100108010100000700",
	}
	for op, id := range want {
		if got[op] != id {
			t.Errorf("%s: %q, want %q", op, got[op], id)
		}
	}
	if len(got) != 12 {
		t.Errorf("%d operations with an id, want 12: %v", len(got), got)
	}
	for op := range got {
		if strings.HasPrefix(op, "AdminService_") {
			t.Errorf("an administrators' operation has an id: %s", op)
		}
	}
}
