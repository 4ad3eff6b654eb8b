package component

import (
	_ "embed"
	"encoding/json"

	"github.com/uias/uias/proto/gen/openapi"
)

// identityOpenAPI is one document for the component's proto files with
// REST mappings (identity.proto and finger.proto): the module carries one.
var identityOpenAPI = mergeOpenAPI(openapi.Identity, openapi.IdentityFinger, filesOpenAPI)

// filesOpenAPI documents the file routes (package filesrest), which have no
// google.api.http mapping to generate it from.
//
//go:embed files.openapi.json
var filesOpenAPI []byte

// mergeOpenAPI adds the paths, schemas and tags of more to base (generated
// documents of one proto package: their names do not collide).
func mergeOpenAPI(base []byte, more ...[]byte) []byte {
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		panic("identity openapi: " + err.Error()) // generated and embedded: cannot happen
	}
	for _, m := range more {
		var d map[string]any
		if err := json.Unmarshal(m, &d); err != nil {
			panic("identity openapi: " + err.Error())
		}
		mergeMap(doc, d, "paths")
		if c, ok := d["components"].(map[string]any); ok {
			dc, _ := doc["components"].(map[string]any)
			if dc == nil {
				dc = map[string]any{}
				doc["components"] = dc
			}
			mergeMap(dc, c, "schemas")
		}
		if tags, ok := d["tags"].([]any); ok {
			dt, _ := doc["tags"].([]any)
			doc["tags"] = append(dt, tags...)
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		panic("identity openapi: " + err.Error())
	}
	return out
}

func mergeMap(dst, src map[string]any, key string) {
	s, ok := src[key].(map[string]any)
	if !ok {
		return
	}
	d, _ := dst[key].(map[string]any)
	if d == nil {
		d = map[string]any{}
		dst[key] = d
	}
	for k, v := range s {
		if _, dup := d[k]; !dup {
			d[k] = v
		}
	}
}
