package gateway

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/uias/uias/pkg/apiid"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/proto/gen/openapi"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// identityAPIDoc is identity's part of the document, declared as its module
// declares it (services/identity/component).
func identityAPIDoc() APIDoc {
	return APIDoc{
		OpenAPI: openapi.Identity,
		Security: map[string][]string{
			"AuthService":  module.AppCredentials,
			"AdminService": module.AdminCredentials,
		},
		Public: []string{"AdminService_AdminLogin", "ResponseKeyService_ListResponseSigningKeys"},
		Signed: []string{"AuthService"},
	}
}

func withIdentityDoc(o *Options) { o.APIDocs = []APIDoc{identityAPIDoc()} }

// loadServedDoc fetches /openapi.json over HTTP and validates it with
// kin-openapi's loader and validator.
func loadServedDoc(t *testing.T, baseURL string) *openapi3.T {
	t.Helper()
	resp, body := httpDo(t, http.MethodGet, baseURL+"/openapi.json", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: HTTP %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(body)
	if err != nil {
		t.Fatalf("loading /openapi.json: %v", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("/openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

func TestOpenAPIDocumentValid(t *testing.T) {
	url, _ := newRecordingGateway(t, withIdentityDoc)
	doc := loadServedDoc(t, url)

	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}
	if doc.Info.Title != "UIAS API" || doc.Info.Version == "" {
		t.Errorf("info: title %q version %q", doc.Info.Title, doc.Info.Version)
	}
	schemes := doc.Components.SecuritySchemes
	for name, want := range map[string]openapi3.SecurityScheme{
		module.SchemeAppID:      {Type: "apiKey", In: "header", Name: "X-Uias-App-Id"},
		module.SchemeAppSecret:  {Type: "apiKey", In: "header", Name: "X-Uias-App-Secret"},
		module.SchemeAdminToken: {Type: "http", Scheme: "bearer"},
	} {
		got := schemes[name]
		if got == nil || got.Value == nil {
			t.Errorf("security scheme %s missing", name)
			continue
		}
		if got.Value.Type != want.Type || got.Value.In != want.In || got.Value.Name != want.Name || got.Value.Scheme != want.Scheme {
			t.Errorf("security scheme %s: %+v, want %+v", name, *got.Value, want)
		}
		// A header scheme must be one the gateway forwards to the services.
		if got.Value.In == "header" {
			if _, ok := incomingHeaderMatcher(http.CanonicalHeaderKey(got.Value.Name)); !ok || !slices.Contains(forwardedRequestHeaders, got.Value.Name) {
				t.Errorf("security scheme %s: header %s is not forwarded by the gateway", name, got.Value.Name)
			}
		}
	}
}

// The operations of a service that takes request signatures declare the
// three signature headers, optional, as forwarded by the edge; the others
// do not.
func TestOpenAPISignatureHeaders(t *testing.T) {
	url, _ := newRecordingGateway(t, withIdentityDoc)
	doc := loadServedDoc(t, url)
	headers := func(path, method string) map[string]*openapi3.Parameter {
		t.Helper()
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Fatalf("%s %s not in the document", method, path)
		}
		out := map[string]*openapi3.Parameter{}
		for _, p := range item.GetOperation(method).Parameters {
			if p.Value != nil && p.Value.In == "header" {
				out[p.Value.Name] = p.Value
			}
		}
		return out
	}
	signed := headers("/v1/authenticate", http.MethodPost)
	for _, name := range []string{"X-Uias-Timestamp", "X-Uias-Nonce", "X-Uias-Signature"} {
		p := signed[name]
		if p == nil || p.Required || p.Description == "" {
			t.Errorf("POST /v1/authenticate: header %s: %+v, want an optional, described parameter", name, p)
			continue
		}
		if !slices.Contains(forwardedRequestHeaders, name) {
			t.Errorf("header %s is declared but not forwarded by the edge", name)
		}
	}
	// The signed answer's headers, on the success response.
	ok := doc.Paths.Find("/v1/authenticate").Post.Responses.Status(http.StatusOK)
	for _, name := range []string{"X-Uias-Response-Signature", "X-Uias-Response-Key-Id", "X-Uias-Response-Timestamp"} {
		if ok == nil || ok.Value == nil || ok.Value.Headers[name] == nil || ok.Value.Headers[name].Value.Description == "" {
			t.Errorf("POST /v1/authenticate: the success response does not declare %s", name)
		}
	}
	if got := headers("/v1/users/{id}", http.MethodGet); len(got) != 0 {
		t.Errorf("GET /v1/users/{id} (AdminService, not signed) declares headers %v", slices.Collect(maps.Keys(got)))
	}
}

// httpRules lists the REST bindings (google.api.http) of the services New
// registers, as "METHOD /path" -> gRPC full method name.
func httpRules(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	services := identityv1.File_uias_identity_v1_identity_proto.Services()
	for i := range services.Len() {
		svc := services.Get(i)
		for j := range svc.Methods().Len() {
			m := svc.Methods().Get(j)
			rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
			if rule == nil {
				continue
			}
			for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
				verb, path := ruleRoute(r)
				if strings.Contains(path, "=") || strings.Contains(path, "*") {
					t.Fatalf("%s: path template %q has a pattern this test does not translate", m.FullName(), path)
				}
				out[verb+" "+path] = fullMethod(m)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no google.api.http rules found")
	}
	return out
}

func fullMethod(m protoreflect.MethodDescriptor) string {
	return "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
}

// TestOpenAPIMatchesRoutes checks, over real HTTP and gRPC, that the document
// and the served REST routes are the same set, that every operation states
// its security, and that a client that follows the document (path, method,
// credentials where its security schemes say) reaches the right RPC with the
// credentials in the metadata the services read.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	url, rec := newRecordingGateway(t, withIdentityDoc)
	doc := loadServedDoc(t, url)
	rules := httpRules(t)

	// Expected security by gRPC service, as services/identity/server
	// CallerAuth enforces it.
	wantSecurity := func(fullMethod string) []string {
		switch {
		case fullMethod == identityv1.AdminService_AdminLogin_FullMethodName,
			fullMethod == identityv1.ResponseKeyService_ListResponseSigningKeys_FullMethodName:
			return nil
		case strings.HasPrefix(fullMethod, "/uias.identity.v1.AuthService/"):
			return []string{module.SchemeAppID, module.SchemeAppSecret}
		case strings.HasPrefix(fullMethod, "/uias.identity.v1.AdminService/"):
			return []string{module.SchemeAdminToken}
		}
		t.Fatalf("no expected security for %s", fullMethod)
		return nil
	}

	seen := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			seen[key] = true
			grpcMethod, ok := rules[key]
			if !ok {
				t.Errorf("%s is in the document but no registered RPC binds it", key)
				continue
			}
			if want := "/uias.identity.v1." + strings.Replace(op.OperationID, "_", "/", 1); want != grpcMethod {
				t.Errorf("%s: operationId %s, but the route calls %s", key, op.OperationID, grpcMethod)
			}
			if op.Security == nil {
				t.Errorf("%s: no security requirement stated", key)
				continue
			}
			var names []string
			for _, req := range *op.Security {
				for n := range req {
					names = append(names, n)
				}
			}
			slices.Sort(names)
			if want := wantSecurity(grpcMethod); !slices.Equal(names, want) || len(*op.Security) > 1 {
				t.Errorf("%s: security %v, want all of %v in one requirement", key, *op.Security, want)
			}

			// Call it as a generated client would.
			hdr := http.Header{}
			wantMD := map[string]string{}
			for _, n := range names {
				s := doc.Components.SecuritySchemes[n].Value
				switch {
				case s.Type == "apiKey" && s.In == "header":
					hdr.Set(s.Name, "value-of-"+n)
					wantMD[strings.ToLower(s.Name)] = "value-of-" + n
				case s.Type == "http" && s.Scheme == "bearer":
					hdr.Set("Authorization", "Bearer value-of-"+n)
					wantMD["authorization"] = "Bearer value-of-" + n
				default:
					t.Fatalf("scheme %s: no client rule for %+v", n, *s)
				}
			}
			body := ""
			if op.RequestBody != nil {
				body = "{}"
				hdr.Set("Content-Type", "application/json")
			}
			target := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "p1")
			resp, respBody := httpDo(t, method, url+target, body, hdr)
			calls := rec.take()
			if len(calls) != 1 || calls[0].method != grpcMethod {
				t.Errorf("%s %s reached %v, want %s (HTTP %d %s)", method, target, calls, grpcMethod, resp.StatusCode, respBody)
				continue
			}
			for k, v := range wantMD {
				if got := calls[0].md.Get(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s: metadata %s = %v, want %q", key, k, got, v)
				}
			}
		}
	}
	for key, m := range rules {
		if !seen[key] {
			t.Errorf("route %s (%s) is served but not in the document", key, m)
		}
	}
}

// curlExample is a curl command line of the docs that calls the REST API.
type curlExample struct {
	where, method, path string
}

var curlURL = regexp.MustCompile(`https?://[^/\s"']+(/v1/[^\s"'?]*)`)

// curlExamples finds the curl commands (with their backslash continuations)
// in the Markdown files that call a /v1/ URL. The method is -X's, else POST
// when data is sent, else GET.
func curlExamples(t *testing.T, files ...string) []curlExample {
	t.Helper()
	var out []curlExample
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		for i := 0; i < len(lines); i++ {
			if !regexp.MustCompile(`(^|[\s$(])curl\s`).MatchString(lines[i]) {
				continue
			}
			start := i
			cmd := lines[i]
			for strings.HasSuffix(strings.TrimSpace(lines[i]), `\`) && i+1 < len(lines) {
				i++
				cmd += " " + lines[i]
			}
			m := curlURL.FindStringSubmatch(cmd)
			if m == nil {
				continue
			}
			method := ""
			if x := regexp.MustCompile(`(?:-X|--request)\s+([A-Za-z]+)`).FindStringSubmatch(cmd); x != nil {
				method = strings.ToUpper(x[1])
			} else if regexp.MustCompile(`\s(-d|--data\S*|-F|--form|--json)\s`).MatchString(cmd) {
				method = http.MethodPost
			} else {
				method = http.MethodGet
			}
			out = append(out, curlExample{where: f + ":" + strconv.Itoa(start+1), method: method, path: m[1]})
		}
	}
	return out
}

// TestDocsCurlExamplesInDocument keeps README.md and docs/*.md in step with
// /openapi.json: every REST call they show with curl names a path and method
// the document has.
func TestDocsCurlExamplesInDocument(t *testing.T) {
	url, _ := newRecordingGateway(t, withIdentityDoc)
	doc := loadServedDoc(t, url)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	// This gateway serves identity's document only (the gateway module knows
	// no other component); the other components' generated documents route
	// the examples of their own sections.
	rs := []routers.Router{router}
	for _, raw := range [][]byte{openapi.Ticket, openapi.Audit, openapi.IdentityFinger, openapi.IdentityDirectory, openapi.Authz} {
		other, err := openapi3.NewLoader().LoadFromData(raw)
		if err != nil {
			t.Fatal(err)
		}
		other.Servers = doc.Servers
		r, err := gorillamux.NewRouter(other)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := curlExamples(t, append([]string{"../README.md"}, docs...)...)
	if len(examples) < 2 {
		t.Fatalf("found %d curl examples in README.md and docs/*.md; the parser is broken", len(examples))
	}
	for _, ex := range examples {
		// Shell variables in the path stand for path parameters.
		path := regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`).ReplaceAllString(ex.path, "p1")
		req, err := http.NewRequest(ex.method, "http://uias.example"+path, nil)
		if err != nil {
			t.Errorf("%s: %v", ex.where, err)
			continue
		}
		var found error
		for _, r := range rs {
			if _, _, found = r.FindRoute(req); found == nil {
				break
			}
		}
		if found != nil {
			t.Errorf("%s: curl -X %s %s is not in /openapi.json: %v", ex.where, ex.method, ex.path, found)
		}
	}
}

func TestCurlExamplesParser(t *testing.T) {
	f := filepath.Join(t.TempDir(), "x.md")
	text := "```sh\ncurl -s -X POST http://127.0.0.1:8080/v1/authenticate \\\n  -H 'A: b' \\\n  -d '{}'\n" +
		"curl http://127.0.0.1:8080/v1/users/$USER_ID\n" +
		"curl -s http://h:8080/v1/password:change -d @f.json\n" +
		"curl http://127.0.0.1:8080/healthz\n```\n"
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got := curlExamples(t, f)
	want := []curlExample{
		{f + ":2", "POST", "/v1/authenticate"},
		{f + ":5", "GET", "/v1/users/$USER_ID"},
		{f + ":6", "POST", "/v1/password:change"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// The router used above rejects what the document lacks.
	doc, err := openapi3.NewLoader().LoadFromData(mustBuild(t, identityAPIDoc()))
	if err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/v1/authenticate"}, {"POST", "/v1/nope"}, {"POST", "/v1/orgs/o1:fly"}} {
		req, _ := http.NewRequest(c.method, "http://uias.example"+c.path, nil)
		if _, _, err := router.FindRoute(req); err == nil {
			t.Errorf("%s %s matched", c.method, c.path)
		}
	}
	req, _ := http.NewRequest("POST", "http://uias.example/v1/orgs/o1:move", nil)
	if route, _, err := router.FindRoute(req); err != nil || route.Operation.OperationID != "AdminService_MoveOrg" {
		t.Errorf("POST /v1/orgs/o1:move: %v", err)
	}
}

func mustBuild(t *testing.T, docs ...APIDoc) []byte {
	t.Helper()
	b, err := BuildOpenAPI(DefaultOpenAPIInfo, docs...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ticketFragment is a second component's generated document: one operation,
// its own schema and the shared error schemas copied from identity's.
func ticketFragment(t *testing.T, mod func(doc map[string]any)) APIDoc {
	t.Helper()
	var identity map[string]any
	if err := json.Unmarshal(identityAPIDoc().OpenAPI, &identity); err != nil {
		t.Fatal(err)
	}
	schemas := identity["components"].(map[string]any)["schemas"].(map[string]any)
	doc := map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "uias/ticket/v1/ticket.proto", "version": "version not set"},
		"tags":    []any{map[string]any{"name": "TicketService"}},
		"paths": map[string]any{
			"/v1/tickets/{id}": map[string]any{"get": map[string]any{
				"operationId": "TicketService_GetTicket",
				"tags":        []any{"TicketService"},
				"parameters":  []any{map[string]any{"in": "path", "name": "id", "required": true, "schema": map[string]any{"type": "string"}}},
				"responses": map[string]any{
					"200": map[string]any{"description": "A successful response.", "content": map[string]any{"application/json": map[string]any{
						"schema": map[string]any{"$ref": "#/components/schemas/v1Ticket"}}}},
					"default": map[string]any{"description": "An unexpected error response.", "content": map[string]any{"application/json": map[string]any{
						"schema": map[string]any{"$ref": "#/components/schemas/googleRpcStatus"}}}},
				},
			}},
		},
		"components": map[string]any{"schemas": map[string]any{
			"v1Ticket":        map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}},
			"googleRpcStatus": schemas["googleRpcStatus"],
			"protobufAny":     schemas["protobufAny"],
		}},
	}
	if mod != nil {
		mod(doc)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return APIDoc{OpenAPI: raw, Security: map[string][]string{"TicketService": module.AppCredentials}}
}

func TestBuildOpenAPIMergesComponents(t *testing.T) {
	raw := mustBuild(t, identityAPIDoc(), ticketFragment(t, nil))
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("merged document invalid: %v", err)
	}
	op := doc.Paths.Find("/v1/tickets/{id}").Get
	if op == nil || op.Security == nil || len(*op.Security) != 1 || len((*op.Security)[0]) != 2 {
		t.Fatalf("ticket operation security: %+v", op)
	}
	if doc.Paths.Find("/v1/authenticate") == nil || doc.Components.Schemas["v1Ticket"] == nil || doc.Tags.Get("TicketService") == nil || doc.Tags.Get("AuthService") == nil {
		t.Error("merged document lacks a part of one of its inputs")
	}
	if doc.Info.Title != "UIAS API" {
		t.Errorf("title %q", doc.Info.Title)
	}
	// Deterministic: the same input gives the same bytes.
	if again := mustBuild(t, identityAPIDoc(), ticketFragment(t, nil)); string(again) != string(raw) {
		t.Error("BuildOpenAPI is not deterministic")
	}
}

func TestBuildOpenAPIRejects(t *testing.T) {
	getOp := func(doc map[string]any) map[string]any {
		return doc["paths"].(map[string]any)["/v1/tickets/{id}"].(map[string]any)["get"].(map[string]any)
	}
	for _, c := range []struct {
		name string
		doc  func(t *testing.T) APIDoc
		want string
	}{
		{"same path and method twice", func(t *testing.T) APIDoc {
			return ticketFragment(t, func(d map[string]any) {
				d["paths"].(map[string]any)["/v1/authenticate"] = map[string]any{"post": getOp(d)}
				delete(d["paths"].(map[string]any), "/v1/tickets/{id}")
			})
		}, "POST /v1/authenticate is declared twice"},
		{"operationId twice", func(t *testing.T) APIDoc {
			return ticketFragment(t, func(d map[string]any) { getOp(d)["operationId"] = "AuthService_Authenticate" })
		}, "operationId AuthService_Authenticate is used twice"},
		{"schema of the same name differs", func(t *testing.T) APIDoc {
			return ticketFragment(t, func(d map[string]any) {
				d["components"].(map[string]any)["schemas"].(map[string]any)["googleRpcStatus"] = map[string]any{"type": "string"}
			})
		}, "components.schemas.googleRpcStatus differs"},
		{"tag twice", func(t *testing.T) APIDoc {
			return ticketFragment(t, func(d map[string]any) { d["tags"] = []any{map[string]any{"name": "AdminService"}} })
		}, "tag AdminService"},
		{"service without security", func(t *testing.T) APIDoc {
			d := ticketFragment(t, nil)
			d.Security = nil
			return d
		}, "service TicketService has no entry in APIDoc.Security"},
		{"unknown scheme", func(t *testing.T) APIDoc {
			d := ticketFragment(t, nil)
			d.Security["TicketService"] = []string{"Cookie"}
			return d
		}, `unknown security scheme "Cookie"`},
		{"empty requirement", func(t *testing.T) APIDoc {
			d := ticketFragment(t, nil)
			d.Security["TicketService"] = nil
			return d
		}, "empty security requirement"},
		{"public names a missing operation", func(t *testing.T) APIDoc {
			d := ticketFragment(t, nil)
			d.Public = []string{"TicketService_Nothing"}
			return d
		}, "APIDoc.Public names unknown operations: TicketService_Nothing"},
		{"own security schemes", func(t *testing.T) APIDoc {
			return ticketFragment(t, func(d map[string]any) {
				d["components"].(map[string]any)["securitySchemes"] = map[string]any{"k": map[string]any{"type": "http", "scheme": "basic"}}
			})
		}, "declares security schemes itself"},
		{"own operation security", func(t *testing.T) APIDoc {
			return ticketFragment(t, func(d map[string]any) { getOp(d)["security"] = []any{} })
		}, "declares security itself"},
		{"servers", func(t *testing.T) APIDoc {
			return ticketFragment(t, func(d map[string]any) { d["servers"] = []any{map[string]any{"url": "/"}} })
		}, `unknown field "servers"`},
		{"OpenAPI 2", func(t *testing.T) APIDoc {
			return ticketFragment(t, func(d map[string]any) { delete(d, "openapi"); d["swagger"] = "2.0" })
		}, `unknown field "swagger"`},
		{"OpenAPI 3.1", func(t *testing.T) APIDoc {
			return ticketFragment(t, func(d map[string]any) { d["openapi"] = "3.1.0" })
		}, `openapi version "3.1.0", want 3.0.x`},
		{"two tags", func(t *testing.T) APIDoc {
			return ticketFragment(t, func(d map[string]any) { getOp(d)["tags"] = []any{"TicketService", "AuthService"} })
		}, "want exactly one (its gRPC service)"},
		{"path-level parameters", func(t *testing.T) APIDoc {
			return ticketFragment(t, func(d map[string]any) {
				d["paths"].(map[string]any)["/v1/tickets/{id}"].(map[string]any)["parameters"] = []any{}
			})
		}, `"parameters" is not supported`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := BuildOpenAPI(DefaultOpenAPIInfo, identityAPIDoc(), c.doc(t))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "document 2") {
				t.Errorf("error %v, want one naming document 2 and containing %q", err, c.want)
			}
		})
	}
	if _, err := BuildOpenAPI(OpenAPIInfo{Title: "UIAS API"}, identityAPIDoc()); err == nil {
		t.Error("a document without version was built")
	}
	// New refuses to start with a document it cannot build.
	_, err := New(context.Background(), Options{Backends: []Backend{{Name: "identity", Conn: &grpc.ClientConn{}, REST: identityREST}},
		APIDocs: []APIDoc{{OpenAPI: []byte(`{"swagger": "2.0"}`)}}})
	if err == nil || !strings.Contains(err.Error(), "openapi") {
		t.Errorf("New with a Swagger 2 document: %v", err)
	}
}

// The interface ids (U_API_ID, JR/T 0185 Appendix B) a component declares
// are published on its operations as x-u-api-id with the institution code
// of the edge's settings; an id for an unknown operation, the same
// operation twice, the same id for two operations, a malformed entry and
// a malformed institution code stop the build with a sentence.
func TestOpenAPIInterfaceIDs(t *testing.T) {
	doc := identityAPIDoc()
	doc.APIIDs = []apiid.Interface{
		{Operation: "AuthService_Authenticate", Type: apiid.A2, Category: apiid.CategoryIdentity, Seq: 1},
		{Operation: "ResponseKeyService_ListResponseSigningKeys", Type: apiid.A1, Category: apiid.CategoryIdentity, Seq: 3},
	}
	raw, err := BuildOpenAPI(OpenAPIInfo{Title: "t", Version: "v1", Institution: "C10010"}, doc)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	op := func(path, method string) map[string]any {
		return m["paths"].(map[string]any)[path].(map[string]any)[method].(map[string]any)
	}
	if got := op("/v1/authenticate", "post")["x-u-api-id"]; got != "OPC100100208010100000100" {
		t.Fatalf("Authenticate: %v", got)
	}
	if got := op("/v1/keys/response-signing", "get")["x-u-api-id"]; got != "OPC100100108010100000300" {
		t.Fatalf("ListResponseSigningKeys: %v", got)
	}
	if got, ok := op("/v1/password:change", "post")["x-u-api-id"]; ok {
		t.Fatalf("an operation not in the catalogue has an id: %v", got)
	}
	if raw, err := BuildOpenAPI(OpenAPIInfo{Title: "t", Version: "v1"}, doc); err != nil || !strings.Contains(string(raw), `"OP000000020801010000010`) {
		t.Fatalf("default institution: %v", err)
	}
	for _, c := range []struct {
		ids         []apiid.Interface
		institution string
		want        string
	}{
		{[]apiid.Interface{{Operation: "AuthService_Nothing", Type: apiid.A1, Category: "080101", Seq: 9}}, "", "names unknown operations: AuthService_Nothing"},
		{[]apiid.Interface{{Operation: "AuthService_Authenticate", Type: apiid.A1, Category: "080101", Seq: 1},
			{Operation: "AuthService_Authenticate", Type: apiid.A1, Category: "080101", Seq: 2}}, "", "has two interface ids"},
		{[]apiid.Interface{{Operation: "AuthService_Authenticate", Type: apiid.A1, Category: "080101", Seq: 1},
			{Operation: "AuthService_ChangePassword", Type: apiid.A1, Category: "080101", Seq: 1}}, "", "have the same interface id"},
		{[]apiid.Interface{{Operation: "AuthService_Authenticate", Type: 7, Category: "080101", Seq: 1}}, "", "neither A1"},
		{nil, "c1001", "institution code is 6 characters"},
	} {
		d := identityAPIDoc()
		d.APIIDs = c.ids
		if _, err := BuildOpenAPI(OpenAPIInfo{Title: "t", Version: "v1", Institution: c.institution}, d); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %q: %v, want %q", c.ids, c.institution, err, c.want)
		}
	}
}
