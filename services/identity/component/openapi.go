package component

import (
	_ "embed"

	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/proto/gen/openapi"
)

// identityOpenAPI is one document for the component's proto files with
// REST mappings (identity.proto, finger.proto and directory.proto) and the file routes: the
// module carries one.
var identityOpenAPI = module.MustMergeOpenAPI(openapi.Identity, openapi.IdentityFinger, openapi.IdentityDirectory, filesOpenAPI)

// filesOpenAPI documents the file routes (package filesrest), which have no
// google.api.http mapping to generate it from.
//
//go:embed files.openapi.json
var filesOpenAPI []byte
