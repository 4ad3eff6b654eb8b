module github.com/uias/uias/bench/authzpeers

go 1.26.0

require (
	github.com/uias/uias/pkg v0.0.0
	github.com/uias/uias/proto/gen v0.0.0
	github.com/uias/uias/services/authz v0.0.0
)

require (
	github.com/bmatcuk/doublestar/v4 v4.6.1 // indirect
	github.com/casbin/casbin/v2 v2.135.0 // indirect
	github.com/casbin/govaluate v1.3.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/openfga/openfga v1.22.1 // indirect
)

replace (
	github.com/uias/uias/pkg => ../../pkg
	github.com/uias/uias/proto/gen => ../../proto/gen
	github.com/uias/uias/services/authz => ../../services/authz
)
