# UIAS build, test and code-generation entry points. Everything the targets
# need (buf, protoc plugins, PostgreSQL for tests) is installed by them.
GO      ?= go
BIN     := $(CURDIR)/.bin
# The workspace modules, from go.work (adding a module edits only go.work).
MODULES := $(shell scripts/modules.sh)
UIAS_FLAGS ?=

# The default build is pure Go (argon2id in golang.org/x/crypto, cgo off: a
# static binary), whatever the machine has installed. LIBARGON2=1 (e.g.
# make build LIBARGON2=1; also honoured by run, test, test-short, bench and
# lint) builds argon2id in the C reference library through cgo; it needs
# Debian's libargon2-dev, which no target installs (scripts/install-libargon2.sh
# does, as root), and fails saying so when it is missing. See
# scripts/buildtags.sh and docs/operators.md.
LIBARGON2 ?=
export LIBARGON2
TAGS := $(if $(filter 1,$(LIBARGON2)),libargon2)
export GOFLAGS = -buildvcs=false $(if $(TAGS),-tags=$(TAGS))
export CGO_ENABLED = $(if $(TAGS),1,0)

.PHONY: chaos all build run test test-short bench bench-capacity bench-sync bench-authz-peers soak proto lint verify tools tidy fmt clean buildtags image chart-test

all: build

## build: the uias binary in bin/ (pure Go; LIBARGON2=1 for libargon2)
build: buildtags
	$(GO) build -o bin/uias ./cmd/uias

## run: every component in one process (embedded NATS + SQLite in ./data).
## Builds bin/uias and runs it rather than `go run`, which exits 1 after any
## Ctrl-C (so make reported an error); uias stops gracefully and exits 0.
run: build
	exec bin/uias serve --target=all $(UIAS_FLAGS)

## test: vet + every module's tests, with a throwaway PostgreSQL for the
## storage conformance suite (installed and started by scripts/test.sh)
test: buildtags
	scripts/test.sh

## chaos: failure tests on a local multi-process cluster (scripts/cluster.sh):
## kill -9, rolling restart, NATS node, PostgreSQL and etcd outages (~5 min)
chaos: buildtags
	cd tests && UIAS_CHAOS=1 go test ./chaos -run TestChaos -count=1 -v -timeout 30m

## test-short: tests without PostgreSQL
test-short: buildtags
	UIAS_NO_PG=1 scripts/test.sh

## image: the container image from deploy/Dockerfile (static libargon2 build,
## distroless, non-root) with docker, podman or buildah; says so and fails
## where none works. IMAGE=name:tag to choose the tag.
image:
	scripts/image.sh $(IMAGE)

## chart-test: the offline Helm chart tests alone (make test runs them too):
## helm lint, helm template, kubeconform -strict, the chart's Go tests
chart-test:
	scripts/chart-test.sh

## bench: Authenticate and cheap-RPC benchmarks vs their floors; writes docs/benchmarks.md
bench: buildtags
	scripts/bench.sh

## bench-capacity: the fingerprint server design's sizing (2.7: 10 000
## registered people, 1 000 online, answers within 4 s) with the default
## argon2id: the online people log in, then act (CAS ticket issued and
## validated, authz Check, logout and password login) against a no-op floor
## in the same run (cmd/uias/internal/bench/capacity.go); ~8 minutes on 2
## CPUs; adds its section to docs/benchmarks-capacity.md. Not part of test or
## bench. BENCH_CAPACITY_FLAGS for more, e.g. --duration 30s for a short run
BENCH_CAPACITY_FLAGS ?=
bench-capacity: buildtags
	$(GO) run ./cmd/uias bench capacity --out docs/benchmarks-capacity.md $(BENCH_CAPACITY_FLAGS)

## bench-sync: two-level centres (services/sync/applier/bench_test.go):
## BENCH_SYNC_N changes queued at level 2 during a cut, applied at level 1
## after the heal, against level 2 applying them from its own stream in the
## same run (catch_up_ratio), and the lag while connected; then the same
## catch-up as deployed (tests/e2e/syncbench_test.go: level 1 a whole UIAS
## process whose identity and authz apply each batch; goal 100k in <= 60 s
## on 2 CPUs); results go in docs/benchmarks-sync.md by hand
BENCH_SYNC_N ?= 100000
bench-sync:
	cd services/sync && UIAS_SYNC_CATCHUP_N=$(BENCH_SYNC_N) $(GO) test ./applier -run '^$$' -bench 'CatchUp|Lag' \
		-benchtime 1x -timeout 30m
	cd tests && UIAS_SYNC_CATCHUP_N=$(BENCH_SYNC_N) $(GO) test ./e2e -run '^$$' -bench 'SyncCatchUpApplied' \
		-benchtime 1x -timeout 30m

## bench-authz-peers: our in-process authz Check against casbin (RBAC with
## domains) and OpenFGA (embedded, memory datastore) on the generated data
## set (issue 10 item 7), in bench/authzpeers, a module outside go.work so
## that uias does not link the peers: the agreement test (Small), then one
## run at full size (ours and casbin; OpenFGA's quadratic memory-datastore
## load is skipped there) and one at BENCH_PEERS_FGA_SCALE of it with all
## three; results go in docs/benchmarks-authz-peers.md by hand
BENCH_PEERS_CHECKS ?= 1000
BENCH_PEERS_FGA_SCALE ?= 0.1
bench-authz-peers:
	cd bench/authzpeers && GOWORK=off $(GO) test -count=1 ./...
	cd bench/authzpeers && GOWORK=off $(GO) run ./cmd/authzpeers -scale 1 -checks $(BENCH_PEERS_CHECKS)
	cd bench/authzpeers && GOWORK=off $(GO) run ./cmd/authzpeers -scale $(BENCH_PEERS_FGA_SCALE) -checks $(BENCH_PEERS_CHECKS)

## soak: identity with 10 M generated people (uias bench scale: listings,
## search, Authenticate while administrators search; import and export rows
## at 1 M); opt-in, not in make test. The stores are generated in bulk
## (indexes and search triggers set aside, then rebuilt) into SOAK_DIR and
## kept there: a stopped run resumes where it stopped when run again; the
## Authenticate rows' UIAS uses the same store (--auth-db). Needs
## ~10 GB of disk per 10 M store; adds its section to docs/benchmarks.md
SOAK_DIR ?= $(or $(TMPDIR),/tmp)/uias-soak
soak: buildtags
	mkdir -p $(SOAK_DIR)
	$(GO) run ./cmd/uias bench scale --people 10000000 --io-people 1000000 --db-dir $(SOAK_DIR) \
		--auth-db $(SOAK_DIR)/people-10000000.db \
		--heading "Identity at 10 M people (make soak)" --out docs/benchmarks.md

# buildtags: checks that the build LIBARGON2 asks for can be made here
# (always true for the default pure-Go build).
buildtags:
	@scripts/buildtags.sh >/dev/null

## tools: pinned buf and protoc plugins into .bin/ (golangci-lint is built by lint)
tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/protoc-gen-grpc-gateway $(BIN)/protoc-gen-openapiv2 $(BIN)/swagger-to-openapi3

$(BIN)/buf: tools/buf/go.mod
	cd tools/buf && GOWORK=off $(GO) build -o $(BIN)/ github.com/bufbuild/buf/cmd/buf

$(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/protoc-gen-grpc-gateway $(BIN)/protoc-gen-openapiv2 &: tools/go.mod
	cd tools && GOWORK=off $(GO) build -o $(BIN)/ google.golang.org/protobuf/cmd/protoc-gen-go \
		google.golang.org/grpc/cmd/protoc-gen-go-grpc \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2

$(BIN)/swagger-to-openapi3: tools/go.mod tools/swagger-to-openapi3/main.go
	cd tools && GOWORK=off $(GO) build -o $(BIN)/ ./swagger-to-openapi3

## proto: lint and regenerate proto/gen (Go, gRPC, gateway, OpenAPI 3.0)
proto: tools
	$(BIN)/buf lint
	rm -rf proto/gen/uias proto/gen/openapi/uias proto/gen/openapi/*.json
	$(BIN)/buf generate
	$(BIN)/swagger-to-openapi3 proto/gen/openapi

## tidy: go mod tidy in every module
tidy:
	for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done

fmt:
	gofmt -w $$(git ls-files '*.go')

$(BIN)/golangci-lint: tools/lint/go.mod
	cd tools/lint && GOWORK=off $(GO) build -o $(BIN)/ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

## lint: buf lint, gofmt, go vet, golangci-lint (.golangci.yml) in every module
lint: buildtags tools $(BIN)/golangci-lint
	$(BIN)/buf lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	for m in $(MODULES); do (cd $$m && $(GO) vet ./... && $(BIN)/golangci-lint run --config $(CURDIR)/.golangci.yml ./...) || exit 1; done

## verify: regenerate and tidy, then fail on any difference from what is committed
verify: proto tidy
	git diff --exit-code -- proto go.work $(addsuffix /go.mod,$(MODULES)) $(addsuffix /go.sum,$(MODULES))
	@test -z "$$(git status --porcelain -- proto)" || { git status --porcelain -- proto; echo "untracked generated files"; exit 1; }

clean:
	rm -rf bin .bin
