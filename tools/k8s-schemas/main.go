// Command k8s-schemas writes strict, standalone JSON schemas of every
// Kubernetes kind, one file per kind and version, for kubeconform, from the
// OpenAPI (swagger 2.0) document api/openapi-spec/swagger.json inside a
// k8s.io/kubernetes module zip (as `go mod download` stores it), and of the
// custom resources of CustomResourceDefinitions (JSON) in other module zips:
//
//	k8s-schemas -zip $(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v1.35.0.zip -out DIR \
//	  -crd ZIP=path/in/module/servicemonitors-crd.json
//
// Files are named as kubeconform's template
// {{ .ResourceKind }}{{ .KindSuffix }}.json expects: deployment-apps-v1.json,
// service-v1.json, networkpolicy-networking-v1.json. Each holds the kind's
// schema and, under "definitions", every definition it refers to, so it is
// read alone. Strict: every object schema with properties gets
// "additionalProperties": false (a misspelt or misplaced field is an error),
// int-or-string fields accept a string or an integer, and quantities a
// string or a number, as the API server does.
package main

import (
	"archive/zip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const specPath = "/api/openapi-spec/swagger.json"

func main() {
	zipPath := flag.String("zip", "", "k8s.io/kubernetes module zip")
	out := flag.String("out", "", "output directory")
	var crds []string
	flag.Func("crd", "ZIP=PATH: a CustomResourceDefinition (JSON) at PATH inside module zip ZIP (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want ZIP=PATH, got %q", v)
		}
		crds = append(crds, v)
		return nil
	})
	flag.Parse()
	if *zipPath == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: k8s-schemas -zip MODULE.zip -out DIR")
		os.Exit(2)
	}
	n, err := run(*zipPath, *out)
	for _, c := range crds {
		if err != nil {
			break
		}
		zipFile, path, _ := strings.Cut(c, "=")
		var m int
		m, err = runCRD(zipFile, path, *out)
		n += m
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8s-schemas:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "k8s-schemas: %d schemas in %s\n", n, *out)
}

type gvk struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

func run(zipPath, out string) (int, error) {
	spec, err := readSpec(zipPath)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		return 0, fmt.Errorf("%s: %w", specPath, err)
	}
	defs := map[string]any{}
	for name, d := range doc.Definitions {
		defs[name] = strict(name, d)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	names := make([]string, 0, len(doc.Definitions))
	for name := range doc.Definitions {
		names = append(names, name)
	}
	sort.Strings(names)
	n := 0
	for _, name := range names {
		raw, ok := doc.Definitions[name]["x-kubernetes-group-version-kind"]
		if !ok {
			continue
		}
		b, _ := json.Marshal(raw)
		var kinds []gvk
		if err := json.Unmarshal(b, &kinds); err != nil {
			return n, fmt.Errorf("%s: x-kubernetes-group-version-kind: %w", name, err)
		}
		for _, k := range kinds {
			schema := map[string]any{}
			for key, v := range defs[name].(map[string]any) {
				schema[key] = v
			}
			used := map[string]any{}
			collect(defs, schema, used)
			schema["definitions"] = used
			file := filepath.Join(out, fileName(k))
			data, err := json.Marshal(schema)
			if err != nil {
				return n, err
			}
			if err := os.WriteFile(file, data, 0o644); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// fileName is kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json: the
// kind in lower case, then the first part of the group (none for the core
// group) and the version.
func fileName(k gvk) string {
	suffix := "-" + k.Version
	if k.Group != "" {
		suffix = "-" + strings.Split(k.Group, ".")[0] + suffix
	}
	return strings.ToLower(k.Kind) + suffix + ".json"
}

// runCRD writes the schema of every served version of the
// CustomResourceDefinition at path (relative to the module root) in zipPath.
func runCRD(zipPath, path, out string) (int, error) {
	data, err := readModuleFile(zipPath, "/"+path)
	if err != nil {
		return 0, err
	}
	var crd struct {
		Spec struct {
			Group string `json:"group"`
			Names struct {
				Kind string `json:"kind"`
			} `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Served bool   `json:"served"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(data, &crd); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	n := 0
	for _, v := range crd.Spec.Versions {
		if !v.Served || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		schema := strict("", v.Schema.OpenAPIV3Schema)
		b, err := json.Marshal(schema)
		if err != nil {
			return n, err
		}
		k := gvk{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
		if err := os.WriteFile(filepath.Join(out, fileName(k)), b, 0o644); err != nil {
			return n, err
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: no served version with a schema", path)
	}
	return n, nil
}

func readSpec(zipPath string) ([]byte, error) { return readModuleFile(zipPath, specPath) }

// readModuleFile reads the file at path (from the module root, with a
// leading slash) of a module zip, whose names are module@version/path.
func readModuleFile(zipPath, name string) ([]byte, error) {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	for _, f := range zr.File {
		// module@version/api/openapi-spec/swagger.json
		at := strings.Index(f.Name, "@")
		if at < 0 {
			continue
		}
		if slash := strings.Index(f.Name[at:], "/"); slash < 0 || f.Name[at+slash:] != name {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	return nil, fmt.Errorf("%s has no %s", zipPath, name)
}

const refPrefix = "#/definitions/"

// collect adds to used every definition s refers to, transitively.
func collect(defs map[string]any, s any, used map[string]any) {
	switch v := s.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok && strings.HasPrefix(ref, refPrefix) {
			name := strings.TrimPrefix(ref, refPrefix)
			if _, seen := used[name]; !seen {
				if d, ok := defs[name]; ok {
					used[name] = d
					collect(defs, d, used)
				}
			}
		}
		for k, e := range v {
			if k == "definitions" {
				continue
			}
			collect(defs, e, used)
		}
	case []any:
		for _, e := range v {
			collect(defs, e, used)
		}
	}
}

// strict returns a copy of schema s (of definition name at the top) with
// additionalProperties false on every object schema that lists its
// properties, and the API server's two-typed scalars.
func strict(name string, s any) any {
	switch v := s.(type) {
	case map[string]any:
		if name == "io.k8s.apimachinery.pkg.api.resource.Quantity" {
			return twoTypes(v, "string", "number")
		}
		if v["format"] == "int-or-string" || v["x-kubernetes-int-or-string"] == true {
			return twoTypes(v, "string", "integer")
		}
		c := make(map[string]any, len(v)+1)
		for k, e := range v {
			switch k {
			case "properties":
				props := map[string]any{}
				for pn, p := range e.(map[string]any) {
					props[pn] = strict("", p)
				}
				c[k] = props
			case "description", "x-kubernetes-group-version-kind":
				// not needed for validation; keeps the files small
			default:
				c[k] = strict("", e)
			}
		}
		if _, ok := v["properties"]; ok && v["x-kubernetes-preserve-unknown-fields"] != true {
			if _, set := v["additionalProperties"]; !set {
				c["additionalProperties"] = false
			}
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = strict("", e)
		}
		return c
	default:
		return v
	}
}

func twoTypes(v map[string]any, a, b string) map[string]any {
	return map[string]any{"oneOf": []any{map[string]any{"type": a}, map[string]any{"type": b}}}
}
