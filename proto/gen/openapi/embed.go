// Package openapi embeds the generated OpenAPI v2 document so the gateway can
// serve it at /openapi.json.
package openapi

import _ "embed"

// JSON is the merged OpenAPI v2 document for every public UIAS RPC.
//
//go:embed uias.swagger.json
var JSON []byte
