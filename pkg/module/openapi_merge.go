package module

import (
	"encoding/json"
	"fmt"
)

// MergeOpenAPI adds the paths, schemas and tags of more to base: a
// component whose services live in several proto files (one generated
// document each) registers one document. The documents come from one proto
// package, so their names do not collide; the first of a name is kept.
func MergeOpenAPI(base []byte, more ...[]byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	for _, m := range more {
		var d map[string]any
		if err := json.Unmarshal(m, &d); err != nil {
			return nil, fmt.Errorf("openapi: %w", err)
		}
		mergeKey(doc, d, "paths")
		if c, ok := d["components"].(map[string]any); ok {
			dc, _ := doc["components"].(map[string]any)
			if dc == nil {
				dc = map[string]any{}
				doc["components"] = dc
			}
			mergeKey(dc, c, "schemas")
		}
		if tags, ok := d["tags"].([]any); ok {
			dt, _ := doc["tags"].([]any)
			doc["tags"] = append(dt, tags...)
		}
	}
	return json.Marshal(doc)
}

func mergeKey(dst, src map[string]any, key string) {
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

// MustMergeOpenAPI is MergeOpenAPI for documents generated or embedded at
// build time, where an error means a broken build: it panics, so every test
// that starts the component catches it.
func MustMergeOpenAPI(base []byte, more ...[]byte) []byte {
	b, err := MergeOpenAPI(base, more...)
	if err != nil {
		panic(err)
	}
	return b
}
