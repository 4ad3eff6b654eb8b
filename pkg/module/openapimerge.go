package module

import "encoding/json"

// MergeOpenAPI adds the paths, schemas and tags of more to base: one
// document for a component whose REST mappings are in several proto files
// (generated documents of one proto package: their names do not collide).
// It panics on a document that is not JSON (they are generated and
// embedded).
func MergeOpenAPI(base []byte, more ...[]byte) []byte {
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		panic("openapi: " + err.Error()) // generated and embedded: cannot happen
	}
	for _, m := range more {
		var d map[string]any
		if err := json.Unmarshal(m, &d); err != nil {
			panic("openapi: " + err.Error())
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
		panic("openapi: " + err.Error())
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
