package module

import (
	"encoding/json"
	"testing"
)

func TestMergeOpenAPI(t *testing.T) {
	a := `{"openapi":"3.0.3","paths":{"/a":{}},"components":{"schemas":{"A":{}}},"tags":[{"name":"S1"}]}`
	b := `{"openapi":"3.0.3","paths":{"/b":{},"/a":{"x":1}},"components":{"schemas":{"B":{}}},"tags":[{"name":"S2"}]}`
	out, err := MergeOpenAPI([]byte(a), []byte(b))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Paths      map[string]map[string]any
		Components struct{ Schemas map[string]any }
		Tags       []map[string]string
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Paths) != 2 || len(d.Paths["/a"]) != 0 || len(d.Components.Schemas) != 2 || len(d.Tags) != 2 {
		t.Fatalf("merged %s", out)
	}
	if _, err := MergeOpenAPI([]byte("{"), []byte(b)); err == nil {
		t.Fatal("bad document accepted")
	}
}
