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

.PHONY: setup protos protos-check buf-lint buf-breaking lint typecheck test test-python postgres demo clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[server,dev]'
	touch $@

## setup: create the virtualenv and install the project with its test tools.
setup: $(VENV)/.installed

## protos: regenerate the Python code (with .pyi stubs) from protos/.
protos: setup
	rm -rf $(GEN_PY)/polytrial/v1 && mkdir -p $(GEN_PY)
	$(PY) -m grpc_tools.protoc -I protos -I $(GOOGLE_PROTOS) -I $(COMMON_PROTOS) \
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

lint: setup
	$(VENV)/bin/ruff check server client runners/python tests
	$(VENV)/bin/ruff format --check server client runners/python tests

typecheck: setup
	$(VENV)/bin/mypy server/polytrial client/polytrial runners/python/polytrial

## postgres: start a throwaway PostgreSQL server on loopback for the tests.
postgres:
	bash .ci/postgres.sh start

test-python: setup
	$(VENV)/bin/pytest

## test: set everything up and run every test suite.
test: setup protos-check buf-lint postgres
	POLYTRIAL_TEST_POSTGRES_URL=$$(bash .ci/postgres.sh url) $(VENV)/bin/pytest

## demo: set everything up and run a real optimization against a fresh server.
demo: setup
	$(PY) -m polytrial.examples.hartmann6 --trials 30

clean:
	rm -rf $(VENV) .pytest_cache
