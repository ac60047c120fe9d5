# Tools are pinned here and installed into .bin/ with `go install`.
BUF_VERSION            := v1.75.0
PROTOC_GEN_GO_VERSION  := v1.36.12
PROTOC_GEN_GRPC_VERSION := v1.6.2
GATEWAY_VERSION        := v2.33.0
GOOGLE_PROTO_FILES_VERSION := 6.0.1

GO   ?= go
BIN  := $(CURDIR)/.bin
DB   ?= knk.db
export PATH := $(BIN):$(PATH)

TOOLS := $(BIN)/.buf-$(BUF_VERSION) \
	$(BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION) \
	$(BIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GRPC_VERSION) \
	$(BIN)/.gateway-$(GATEWAY_VERSION)

.PHONY: run build test test-hostile bench generate lint tools vendor-protos clean readme

## run: build and start knkd on ./knk.db (gRPC 127.0.0.1:9090, REST 127.0.0.1:8080, plaintext on loopback)
run: build
	./bin/knkd --db $(DB)

## build: build knkd, knkctl and knkbench into ./bin
build:
	$(GO) build -o bin/ ./cmd/...

## test: every test, with the race detector, on SQLite and, when
## KNK_TEST_POSTGRES_DSN names a PostgreSQL server, on PostgreSQL as well
test:
	$(GO) test -race -count=1 ./...
	@if [ -n "$$KNK_TEST_POSTGRES_DSN" ]; then \
		echo "Running the store and service tests again on PostgreSQL ($$KNK_TEST_POSTGRES_DSN)"; \
		KNK_TEST_STORE=postgres $(GO) test -race -count=1 ./internal/... ./services/... ./cmd/...; \
	else \
		echo "PostgreSQL tests skipped: set KNK_TEST_POSTGRES_DSN (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run them"; \
	fi

## test-hostile: the hostile-traffic suite (test/hostile) against bin/knkd as its own
## process, at full size unless HOSTILE_SIZE=small; prints its figures
HOSTILE_SIZE ?= full
test-hostile: build
	KNK_HOSTILE=$(HOSTILE_SIZE) KNK_HOSTILE_KNKD=$(CURDIR)/bin/knkd $(GO) test -count=1 -v -timeout 20m -run TestHostile ./test/hostile/

## bench: the benchmark suite (not part of test)
bench: build
	./bin/knkbench $(BENCH_FLAGS)

## generate: regenerate gen/ from proto/ with buf and the pinned local plugins
generate: $(TOOLS)
	rm -rf gen
	buf generate

## lint: buf lint, go vet, and a check that gen/ matches the protos
lint: $(TOOLS)
	buf lint
	$(GO) vet ./...
	$(MAKE) --no-print-directory generate
	@git diff --exit-code --stat -- gen || { echo "gen/ is out of date: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- gen)" || { git status --porcelain -- gen; echo "gen/ has files not committed: run 'make generate' and commit"; exit 1; }

## readme: regenerate README.md's disclosure table from internal/disclosure
readme:
	$(GO) run ./internal/disclosure/readme README.md

tools: $(TOOLS)

$(BIN)/.buf-$(BUF_VERSION):
	GOBIN=$(BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@
$(BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(BIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GRPC_VERSION):
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GRPC_VERSION)
	@touch $@
$(BIN)/.gateway-$(GATEWAY_VERSION):
	GOBIN=$(BIN) $(GO) install \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GATEWAY_VERSION) \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GATEWAY_VERSION)
	@touch $@

## vendor-protos: refresh proto/third_party from the npm package google-proto-files
vendor-protos:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent google-proto-files@$(GOOGLE_PROTO_FILES_VERSION) >/dev/null && \
	tar xzf google-proto-files-$(GOOGLE_PROTO_FILES_VERSION).tgz && \
	cp package/google/api/annotations.proto package/google/api/http.proto \
	   package/google/api/field_behavior.proto package/google/api/httpbody.proto $(CURDIR)/proto/third_party/google/api/ && \
	cp package/google/rpc/status.proto package/google/rpc/code.proto package/google/rpc/error_details.proto \
	   $(CURDIR)/proto/third_party/google/rpc/ && \
	cp package/LICENSE $(CURDIR)/proto/third_party/LICENSE && rm -rf $$tmp

clean:
	rm -rf bin .bin
