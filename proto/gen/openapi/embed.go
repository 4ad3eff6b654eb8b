// Package openapi embeds the generated OpenAPI 3.0 document of the UIAS
// protos (protoc-gen-openapiv2, converted by tools/swagger-to-openapi3; see
// `make proto`). The gateway adds security and serves it at /openapi.json.
package openapi

import _ "embed"

// JSON is the OpenAPI 3.0 document for every public UIAS RPC, without
// security requirements (gateway.BuildOpenAPI adds them).
//
//go:embed uias.openapi.json
var JSON []byte
