// Command swagger-to-openapi3 replaces each OpenAPI (Swagger) 2.0 document
// protoc-gen-openapiv2 wrote under a directory, NAME.swagger.json, with its
// OpenAPI 3.0 conversion, NAME.openapi.json (github.com/getkin/kin-openapi
// openapi2conv), after validating the result. `make proto` runs it, so the
// conversion and its dependencies stay out of the uias binary; the gateway
// merges the converted documents of the services it serves at start and adds
// their security (gateway.BuildOpenAPI).
//
// A document without paths (a proto file with gRPC-only services) is
// removed without a conversion.
//
// Usage: swagger-to-openapi3 DIR
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: swagger-to-openapi3 DIR")
		os.Exit(2)
	}
	n := 0
	err := filepath.WalkDir(os.Args[1], func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".swagger.json") {
			return err
		}
		n++
		return convert(path, strings.TrimSuffix(path, ".swagger.json")+".openapi.json")
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("no *.swagger.json under %s", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "swagger-to-openapi3:", err)
		os.Exit(1)
	}
}

func convert(in, out string) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var doc2 openapi2.T
	if err := json.Unmarshal(raw, &doc2); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if len(doc2.Paths) == 0 {
		// A proto file whose services have no HTTP bindings (gRPC only,
		// e.g. identity's KeyService) defines no REST API: no document.
		return os.Remove(in)
	}
	doc3, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		return fmt.Errorf("%s: converting: %w", in, err)
	}
	if err := doc3.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		return fmt.Errorf("%s: the converted document is invalid: %w", in, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc3); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Remove(in)
}
