package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/uias/uias/pkg/apiid"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/reqsig"
)

// securitySchemes are the OpenAPI 3 definitions of the schemes components
// name in APIDoc.Security (module.Scheme*). The header names are the ones
// apiHandler forwards, so a client generated from the document sends what
// the services read.
func securitySchemes() map[string]any {
	return map[string]any{
		module.SchemeAppID: map[string]any{"type": "apiKey", "in": "header", "name": headerAppID,
			"description": "The application's App_ID (issued by an administrator, `uias ctl app create`). Sent together with AppSecret."},
		module.SchemeAppSecret: map[string]any{"type": "apiKey", "in": "header", "name": headerAppSecret,
			"description": "The application's App_Secret, shown once when the application is created or its secret rotated. Sent together with AppID."},
		module.SchemeAdminToken: map[string]any{"type": "http", "scheme": "bearer",
			"description": "An administrator's token from `POST /v1/admin/login`, sent as `Authorization: Bearer <token>`."},
	}
}

// OpenAPIInfo titles the served document.
type OpenAPIInfo struct {
	Title       string
	Version     string
	Description string
	// Institution is the institution code of the interface ids
	// (x-u-api-id; empty: apiid.DefaultInstitution).
	Institution string
}

// DefaultOpenAPIInfo titles /openapi.json. Version is the version of the
// REST API (the /v1 in its paths), not of the build.
var DefaultOpenAPIInfo = OpenAPIInfo{
	Title:   "UIAS API",
	Version: "v1",
	Description: "REST/JSON API of UIAS, the unified identity authentication suite. " +
		"Business systems call the AuthService operations with their App_ID and App_Secret; " +
		"administrators call the AdminService operations with a bearer token from AdminLogin. " +
		"Errors have the body {\"code\", \"message\", \"details\"}: code is the gRPC status code; " +
		"errors from the services carry a google.rpc.ErrorInfo (reason, legacy_code) in details.",
}

// APIDoc is one component's part of /openapi.json: the OpenAPI 3.0 document
// `make proto` generates from its protos (protoc-gen-openapiv2, then
// tools/swagger-to-openapi3), and the credentials its operations need.
type APIDoc struct {
	// OpenAPI is the generated OpenAPI 3.0 document in JSON, without
	// security (BuildOpenAPI adds it).
	OpenAPI []byte
	// Security maps each gRPC service of the document (the tag
	// protoc-gen-openapiv2 gives its operations, e.g. "AuthService") to the
	// security schemes its operations need, all together (e.g.
	// module.AppCredentials). Every operation must be covered, here or by
	// Public.
	Security map[string][]string
	// Public lists the operations (operationId, e.g.
	// "AdminService_AdminLogin") that need no credentials.
	Public []string
	// Signed lists the gRPC services (tags) whose operations take request
	// signatures (grpcx.SignedBodies): their operations declare the
	// optional signature headers (signatureParameters).
	Signed []string
	// APIIDs place operations in the catalogue of uniform interface ids:
	// each gets x-u-api-id (module.Module.APIIDs).
	APIIDs []apiid.Interface
}

// signatureParameters are the header parameters of an operation that
// takes request signatures (docs/integrators.md, "Signed requests"):
// optional, all three together; an application that must sign is refused
// SIGNATURE_REQUIRED without them.
func signatureParameters() []any {
	param := func(name, desc string, schema map[string]any) map[string]any {
		return map[string]any{"name": name, "in": "header", "required": false, "description": desc, "schema": schema}
	}
	return []any{
		param(headerTimestamp, "Signed requests: the time of signing, Unix seconds (within 300 s of the server's clock). "+
			"Sent with X-Uias-Nonce and X-Uias-Signature, or none of the three.",
			map[string]any{"type": "string", "pattern": "^[0-9]{1,19}$"}),
		param(headerNonce, "Signed requests: 16-64 characters of A-Z a-z 0-9 _ -, random and new for every request (retries included).",
			map[string]any{"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"}),
		param(headerSignature, "Signed requests: the base64 signature, with one of the application's signing keys, of the lines "+
			"UIAS-SIG-V1, App_ID, the method, a space and the request target as sent (e.g. POST /v1/authenticate), "+
			"the timestamp, the nonce and the lower-case hex SHA-256 of the body, joined by newlines "+
			"(docs/integrators.md, Signed requests).",
			map[string]any{"type": "string", "minLength": 1}),
	}
}

// answerSignatureHeaders are the headers of a signed answer, on the
// success response of an operation that takes request signatures
// (docs/integrators.md, "Signed answers"): present when the request was
// signed and verified.
func answerSignatureHeaders() map[string]any {
	h := func(desc string) map[string]any {
		return map[string]any{"description": desc, "schema": map[string]any{"type": "string"}}
	}
	return map[string]any{
		reqsig.HeaderResponseSignature: h("Signed answers (to a signed request): UIAS's Ed25519 signature (SM2 with SM3, ASN.1 DER, for an application that signs with SM2 where UIAS offers SM2), base64, of the lines " +
			"UIAS-SIG-V1-RESP, App_ID, the request's method and target, the request's nonce, X-Uias-Response-Timestamp " +
			"and the lower-case hex SHA-256 of this body, joined by newlines (docs/integrators.md, Signed answers)."),
		reqsig.HeaderResponseKeyID:     h("Signed answers: the id (kid) of the key that signed, among GET /v1/keys/response-signing."),
		reqsig.HeaderResponseTimestamp: h("Signed answers: when the answer was signed, Unix seconds."),
	}
}

// fragment is a generated OpenAPI 3.0 document; the fields it may have are
// the ones protoc-gen-openapiv2 and the conversion produce.
type fragment struct {
	OpenAPI    string                    `json:"openapi"`
	Info       map[string]any            `json:"info"`
	Tags       []map[string]any          `json:"tags"`
	Paths      map[string]map[string]any `json:"paths"`
	Components map[string]map[string]any `json:"components"`
}

// operationKeys are the keys of a path item that hold operations.
var operationKeys = map[string]bool{"get": true, "put": true, "post": true, "delete": true,
	"options": true, "head": true, "patch": true, "trace": true}

// BuildOpenAPI merges the components' generated OpenAPI 3.0 documents into
// the one /openapi.json serves: titled by info, with the security schemes
// above and each operation's security requirement. It fails, naming the
// cause, when the documents collide (the same path and method, operationId or
// tag twice, or two different components under one name), when an operation
// has no declared security, or when a document has parts it cannot merge.
// The result is deterministic indented JSON.
func BuildOpenAPI(info OpenAPIInfo, docs ...APIDoc) ([]byte, error) {
	if info.Title == "" || info.Version == "" {
		return nil, errors.New("openapi: info needs a title and a version")
	}
	schemes := securitySchemes()
	institution := info.Institution
	if institution == "" {
		institution = apiid.DefaultInstitution
	}
	if err := apiid.CheckInstitution(institution); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	m := &merged{
		institution: institution,
		uapi:        map[string]string{},
		paths:       map[string]map[string]any{},
		components:  map[string]map[string]any{},
		opIDs:       map[string]bool{},
		tags:        map[string]bool{},
	}
	for i, d := range docs {
		if err := m.add(d, schemes); err != nil {
			return nil, fmt.Errorf("openapi: document %d: %w", i+1, err)
		}
	}
	if m.version == "" {
		m.version = "3.0.3"
	}
	m.components["securitySchemes"] = schemes
	infoObj := map[string]any{"title": info.Title, "version": info.Version}
	if info.Description != "" {
		infoObj["description"] = info.Description
	}
	doc := map[string]any{
		"openapi":    m.version,
		"info":       infoObj,
		"paths":      m.paths,
		"components": m.components,
	}
	if len(m.tagList) > 0 {
		doc["tags"] = m.tagList
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return buf.Bytes(), nil
}

type merged struct {
	institution string
	// uapi: the interface ids given (id -> operation), each once.
	uapi       map[string]string
	version    string
	paths      map[string]map[string]any
	components map[string]map[string]any
	tagList    []map[string]any
	opIDs      map[string]bool
	tags       map[string]bool
}

// add merges d, giving every operation its security requirement.
func (m *merged) add(d APIDoc, schemes map[string]any) error {
	var f fragment
	dec := json.NewDecoder(bytes.NewReader(d.OpenAPI))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("not a generated OpenAPI 3.0 document (openapi, info, tags, paths, components): %w", err)
	}
	if !strings.HasPrefix(f.OpenAPI, "3.0.") {
		return fmt.Errorf("openapi version %q, want 3.0.x", f.OpenAPI)
	}
	if m.version == "" {
		m.version = f.OpenAPI
	} else if f.OpenAPI != m.version {
		return fmt.Errorf("openapi version %s differs from %s", f.OpenAPI, m.version)
	}
	if _, ok := f.Components["securitySchemes"]; ok {
		return errors.New("declares security schemes itself; declare security in APIDoc.Security instead")
	}
	for svc, names := range d.Security {
		if len(names) == 0 {
			return fmt.Errorf("service %s: empty security requirement (list its public operations in APIDoc.Public)", svc)
		}
		for _, n := range names {
			if _, ok := schemes[n]; !ok {
				return fmt.Errorf("service %s: unknown security scheme %q", svc, n)
			}
		}
	}
	public := map[string]bool{}
	for _, id := range d.Public {
		public[id] = true
	}

	uapi := map[string]apiid.Interface{}
	for _, i := range d.APIIDs {
		if err := i.Check(); err != nil {
			return err
		}
		if _, dup := uapi[i.Operation]; dup {
			return fmt.Errorf("operation %s has two interface ids", i.Operation)
		}
		uapi[i.Operation] = i
	}
	for _, path := range slices.Sorted(maps.Keys(f.Paths)) {
		item := f.Paths[path]
		into := m.paths[path]
		if into == nil {
			into = map[string]any{}
			m.paths[path] = into
		}
		for _, method := range slices.Sorted(maps.Keys(item)) {
			op, isOp := item[method].(map[string]any)
			if !operationKeys[method] || !isOp {
				return fmt.Errorf("path %s: %q is not supported (only operations)", path, method)
			}
			if _, dup := into[method]; dup {
				return fmt.Errorf("%s %s is declared twice", strings.ToUpper(method), path)
			}
			id, _ := op["operationId"].(string)
			if id == "" {
				return fmt.Errorf("%s %s has no operationId", strings.ToUpper(method), path)
			}
			if m.opIDs[id] {
				return fmt.Errorf("operationId %s is used twice", id)
			}
			m.opIDs[id] = true
			if _, ok := op["security"]; ok {
				return fmt.Errorf("operation %s declares security itself; declare it in APIDoc.Security instead", id)
			}
			req, err := operationSecurity(id, op["tags"], d.Security, public)
			if err != nil {
				return err
			}
			op["security"] = req
			if tags, _ := op["tags"].([]any); len(tags) == 1 && slices.Contains(d.Signed, fmt.Sprint(tags[0])) {
				params, _ := op["parameters"].([]any)
				op["parameters"] = append(params, signatureParameters()...)
				if rs, _ := op["responses"].(map[string]any); rs != nil {
					if ok, _ := rs["200"].(map[string]any); ok != nil {
						ok["headers"] = answerSignatureHeaders()
					}
				}
			}
			if i, ok := uapi[id]; ok {
				uid := i.ID(m.institution)
				if other, taken := m.uapi[uid]; taken {
					return fmt.Errorf("operations %s and %s have the same interface id %s", other, id, uid)
				}
				m.uapi[uid] = id
				op["x-u-api-id"] = uid
				delete(uapi, id)
			}
			delete(public, id)
			into[method] = op
		}
	}
	if len(public) > 0 {
		return fmt.Errorf("APIDoc.Public names unknown operations: %s", strings.Join(slices.Sorted(maps.Keys(public)), ", "))
	}
	if len(uapi) > 0 {
		return fmt.Errorf("APIDoc.APIIDs names unknown operations: %s", strings.Join(slices.Sorted(maps.Keys(uapi)), ", "))
	}

	for _, kind := range slices.Sorted(maps.Keys(f.Components)) {
		into := m.components[kind]
		if into == nil {
			into = map[string]any{}
			m.components[kind] = into
		}
		for name, v := range f.Components[kind] {
			if prev, ok := into[name]; ok {
				if !reflect.DeepEqual(prev, v) {
					return fmt.Errorf("components.%s.%s differs from another document's of the same name", kind, name)
				}
				continue
			}
			into[name] = v
		}
	}
	for _, tag := range f.Tags {
		name, _ := tag["name"].(string)
		if m.tags[name] {
			return fmt.Errorf("tag %s (a gRPC service name) is used by another document too; give the services distinct names", name)
		}
		m.tags[name] = true
		m.tagList = append(m.tagList, tag)
	}
	return nil
}

// operationSecurity is the requirement of operation id: none when public,
// else the one of its service (its single tag).
func operationSecurity(id string, tags any, bySvc map[string][]string, public map[string]bool) ([]any, error) {
	if public[id] {
		return []any{}, nil
	}
	list, _ := tags.([]any)
	svc, _ := firstString(list)
	if len(list) != 1 || svc == "" {
		return nil, fmt.Errorf("operation %s has tags %v, want exactly one (its gRPC service)", id, tags)
	}
	names, ok := bySvc[svc]
	if !ok {
		return nil, fmt.Errorf("operation %s: service %s has no entry in APIDoc.Security and the operation is not in APIDoc.Public", id, svc)
	}
	req := map[string]any{}
	for _, n := range names {
		req[n] = []any{}
	}
	return []any{req}, nil
}

func firstString(list []any) (string, bool) {
	if len(list) == 0 {
		return "", false
	}
	s, ok := list[0].(string)
	return s, ok
}

// handleOpenAPI serves a document built once by New.
func handleOpenAPI(doc []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
}
