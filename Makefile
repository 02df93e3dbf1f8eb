# Polytrial's one entry point for setup, code generation, checks and tests.
# `make demo` and `make test` are the README's two commands.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
GEN_PY := protos/gen/python
PROTO_FILES := $(wildcard protos/polytrial/v1/*.proto)
GOOGLE_PROTOS = $(shell $(PY) -c "import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), '_proto'))")
COMMON_PROTOS = $(shell $(PY) -c "import google.api.field_behavior_pb2 as m, os; print(os.path.dirname(os.path.dirname(os.path.dirname(m.__file__))))")

.PHONY: setup bo bench-asktell load-test bench-bo bench-bo-full protos protos-check buf-lint buf-breaking lint typecheck test test-python postgres demo demo-sync clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[server,dev,bo]'
	touch $@

## help: list the targets and what each does.
.PHONY: help
help:
	@awk '/^## /{sub(/^## /, ""); print}' $(MAKEFILE_LIST)

## setup: create the virtualenv and install the project with its test tools.
setup: $(VENV)/.installed

## bo: add Bayesian optimization (PyTorch, BoTorch) to an existing virtualenv.
bo:
	$(PIP) install -e '.[server,bo]'

## bench-asktell: ask/tell cycles per second through `polytrial serve` (SQLite and
## PostgreSQL; 1, 4 and 16 client processes) against a bare gRPC echo server.
bench-asktell: setup postgres
	POLYTRIAL_BENCH_POSTGRES_URL=$$(bash .ci/postgres.sh url) $(PY) -m benchmarks.asktell

## load-test: 16 client processes for 60 s across two PostgreSQL replicas.
load-test: setup postgres
	POLYTRIAL_TEST_POSTGRES_URL=$$(bash .ci/postgres.sh url) POLYTRIAL_LOAD_SECONDS=60 \
	  $(VENV)/bin/pytest tests/load/test_load.py

## bench-bo: install the peers (Optuna, Ax) and run the quick BO benchmark.
bench-bo: setup
	$(PIP) install -e '.[server,dev,bo,bench]'
	$(PY) -m benchmarks.bo --profile quick

## bench-bo-full: the full BO benchmark (10 seeds) in the background.
bench-bo-full: setup
	$(PIP) install -e '.[server,dev,bo,bench]'
	mkdir -p .tmp
	nohup $(PY) -m benchmarks.bo --profile full --json .tmp/bench-bo-full.json > .tmp/bench-bo-full.log 2>&1 &
	@echo "running in the background; follow it with: tail -f .tmp/bench-bo-full.log"

## protos: regenerate the Python code (with .pyi stubs) from protos/.
protos: setup
	rm -rf $(GEN_PY)/polytrial/v1 && mkdir -p $(GEN_PY)
	$(PY) -m grpc_tools.protoc -I protos -I $(GOOGLE_PROTOS) -I $(COMMON_PROTOS) \
	  --plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy \
	  --plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc \
	  --python_out=$(GEN_PY) --grpc_python_out=$(GEN_PY) --mypy_out=$(GEN_PY) \
	  --mypy_grpc_out=$(GEN_PY) $(PROTO_FILES)

## protos-check: fail when the committed generated code is stale.
protos-check: protos
	git diff --exit-code -- protos/gen || (echo "generated code is stale: run 'make protos' and commit" && exit 1)
	test -z "$$(git status --porcelain -- protos/gen)" || (echo "untracked generated files: run 'make protos' and commit" && exit 1)

BUF := tools/buf/node_modules/.bin/buf

$(BUF): tools/buf/package.json tools/buf/package-lock.json
	cd tools/buf && npm ci --no-audit --no-fund
	touch $@

## buf-lint: lint the API with buf (Google's field_behavior.proto comes from the venv).
buf-lint: setup $(BUF)
	mkdir -p .tmp/proto-deps/google/api
	cp $(COMMON_PROTOS)/google/api/field_behavior.proto .tmp/proto-deps/google/api/
	$(BUF) lint

## buf-breaking: check the API for breaking changes against main.
buf-breaking: buf-lint
	$(BUF) breaking --against '.git#branch=main'

## lint: check the Python code with ruff (lint rules and formatting).
lint: setup
	$(VENV)/bin/ruff check server client runners/python tests benchmarks
	$(VENV)/bin/ruff format --check server client runners/python tests benchmarks

## typecheck: mypy --strict on the server, the client and the Python runner.
typecheck: setup
	$(VENV)/bin/mypy server/polytrial client/polytrial runners/python/polytrial

## postgres: start a throwaway PostgreSQL server on loopback for the tests.
postgres:
	bash .ci/postgres.sh start

## test-python: run only the Python tests; their PostgreSQL half is skipped
## unless POLYTRIAL_TEST_POSTGRES_URL is set (`make test` sets it).
test-python: setup
	$(VENV)/bin/pytest

## test: set everything up and run every test suite.
test: setup protos-check protos-runners-check buf-lint lint typecheck postgres test-runners test-clients
	POLYTRIAL_TEST_POSTGRES_URL=$$(bash .ci/postgres.sh url) $(VENV)/bin/pytest

## demo: set everything up and run a real optimization through a runner: a
## fresh server orchestrates 30 Hartmann6 trials, 3 at a time, on the Python
## example runner.
demo: setup
	$(PY) -m polytrial.examples.orchestrated --trials 30 --parallel 3

## demo-sync: the same problem through the synchronous loop (no runner).
demo-sync: setup
	$(PY) -m polytrial.examples.hartmann6 --trials 30

## clean: remove the virtualenv and pytest's cache.
clean:
	rm -rf $(VENV) .pytest_cache

# --- Runners: Go and TypeScript SDKs, their generated code and tests --------
# protoc is grpc_tools.protoc from the virtualenv; the language plugins are
# pinned here (Go, installed with `go install`) and in runners/ts/package.json
# (ts-proto, installed with `npm ci` from the lockfile).
GO ?= go
TOOLS_BIN := $(CURDIR)/.tools/bin
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GEN_GO := protos/gen/go
GEN_GO_MODULE := github.com/polytrial/polytrial/protos/gen/go
RUNNERS_GO := runners/go
RUNNERS_TS := runners/ts

.PHONY: setup-runners go-tools protos-go protos-ts protos-runners-check build-runners test-runners

## go-tools: install the pinned protoc-gen-go and protoc-gen-go-grpc into .tools/bin.
go-tools:
	mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

$(RUNNERS_TS)/node_modules/.installed: $(RUNNERS_TS)/package.json $(RUNNERS_TS)/package-lock.json
	cd $(RUNNERS_TS) && npm ci --no-audit --no-fund
	touch $@

## setup-runners: download the Go modules and install the pinned npm packages.
setup-runners: setup $(RUNNERS_TS)/node_modules/.installed
	cd $(GEN_GO) && $(GO) mod download
	cd $(RUNNERS_GO) && $(GO) mod download

## protos-go: regenerate protos/gen/go (committed, as Go modules expect).
protos-go: setup go-tools
	rm -f $(GEN_GO)/polytrial/v1/*.pb.go
	$(PY) -m grpc_tools.protoc -I protos -I $(GOOGLE_PROTOS) -I $(COMMON_PROTOS) \
	  --plugin=protoc-gen-go=$(TOOLS_BIN)/protoc-gen-go \
	  --plugin=protoc-gen-go-grpc=$(TOOLS_BIN)/protoc-gen-go-grpc \
	  --go_out=$(GEN_GO) --go_opt=module=$(GEN_GO_MODULE) \
	  --go-grpc_out=$(GEN_GO) --go-grpc_opt=module=$(GEN_GO_MODULE) $(PROTO_FILES)

## protos-ts: regenerate protos/gen/ts with the pinned ts-proto.
protos-ts: setup-runners
	PY=$(CURDIR)/$(PY) bash $(RUNNERS_TS)/scripts/codegen.sh

## protos-runners-check: fail when the committed Go or TypeScript code is stale.
protos-runners-check: protos-go protos-ts
	git diff --exit-code -- $(GEN_GO) protos/gen/ts || (echo "generated code is stale: run 'make protos-go protos-ts' and commit" && exit 1)
	test -z "$$(git status --porcelain -- $(GEN_GO) protos/gen/ts)" || (echo "untracked generated files: run 'make protos-go protos-ts' and commit" && exit 1)

## build-runners: compile the Go and TypeScript SDKs and their examples.
build-runners: setup-runners
	cd $(RUNNERS_GO) && $(GO) build ./...
	cd $(RUNNERS_TS) && rm -rf dist && npm run --silent build

## test-runners: vet and test the Go and TypeScript SDKs (the cross-language
## conformance suite is tests/runners/, run by pytest).
test-runners: build-runners
	cd $(GEN_GO) && $(GO) vet ./...
	cd $(RUNNERS_GO) && test -z "$$(gofmt -l .)" || (gofmt -l . && echo "run gofmt -w" && exit 1)
	cd $(RUNNERS_GO) && $(GO) vet ./... && $(GO) test ./...
	cd $(RUNNERS_TS) && npm run --silent format-check && npm test

# --- Clients: the Go and TypeScript client SDKs and their tests -------------
# Both compile the shared generated code: protos/gen/go through a `replace`
# directive in client/go/go.mod, protos/gen/ts through client/ts/tsconfig.json
# (as runners/ does). Their tests start a real `polytrial serve` from the
# virtualenv; POLYTRIAL_BIN overrides which one. `go test -count=1` because a
# cached pass says nothing about today's server.
CLIENT_GO := client/go
CLIENT_TS := client/ts

.PHONY: build-clients test-clients

$(CLIENT_TS)/node_modules/.installed: $(CLIENT_TS)/package.json $(CLIENT_TS)/package-lock.json
	cd $(CLIENT_TS) && npm ci --no-audit --no-fund
	touch $@

## build-clients: install the pinned npm packages and compile both clients.
build-clients: $(CLIENT_TS)/node_modules/.installed
	cd $(CLIENT_GO) && $(GO) mod download && $(GO) build ./...
	cd $(CLIENT_TS) && rm -rf dist && npm run --silent build

## test-clients: vet, format-check and test both clients against a real server.
test-clients: setup build-clients
	cd $(CLIENT_GO) && test -z "$$(gofmt -l .)" || (gofmt -l . && echo "run gofmt -w" && exit 1)
	cd $(CLIENT_GO) && $(GO) vet ./... && $(GO) test -count=1 -timeout 120s ./...
	cd $(CLIENT_TS) && npm run --silent format-check && npm test
