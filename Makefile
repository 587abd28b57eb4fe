# One way to run everything: make up, make test, make check, make proto, make bench, make image.
# `up` and `test` create .venv on a fresh clone, so each is the only command a newcomer types.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BUF_VERSION := 1.75.0
BUF := .build/buf/node_modules/.bin/buf
PROTO_SRC := $(wildcard protos/corral/v1/*.proto)

.PHONY: up test test-faults check proto proto-gen proto-drift bench bench-full venv clean lint typecheck image image-postgres manifests coverage

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# make up serves /metrics too (corral up leaves them off unless asked).
up: $(STAMP)
	$(VENV)/bin/corral up --manager-metrics-listen 127.0.0.1:9180 \
	  --worker-metrics-listen 127.0.0.1:9181 --gateway-metrics-listen 127.0.0.1:9182

# The suite measures line coverage of corral, manager, worker and gateway (in the test
# process and in the servers tests start as subprocesses; see [tool.coverage] in
# pyproject.toml), writes it to .coverage and prints it.
test: $(STAMP)
	rm -f .coverage .coverage.*
	$(PY) -m pytest -q -p no:cacheprovider --ignore=tests/faults --cov --cov-report=term

# The fault suite (tests/faults): kills, partitions, corruption, full disks, fuzzing; prints its figures.
test-faults: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/faults

# `check` holds the coverage of the last `make test` to COVERAGE_MIN, and runs `make test`
# first when there is none. .ci/run runs `make test` right before `make check`, so CI
# holds a fresh figure; locally, `make test` refreshes it.
COVERAGE_MIN := 85

.coverage: | $(STAMP)
	-$(MAKE) test

coverage: | .coverage
	@total=$$($(VENV)/bin/coverage report --format=total); \
	echo "line coverage of corral, manager, worker, gateway: $$total% (minimum $(COVERAGE_MIN)%)"; \
	$(VENV)/bin/coverage report --format=total --fail-under=$(COVERAGE_MIN) >/dev/null \
	  || { echo "coverage $$total% is under $(COVERAGE_MIN)%: add tests" >&2; exit 1; }

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck proto-drift manifests $(BUF)
	$(VENV)/bin/lint-imports
	$(MAKE) -s .build/protodeps
	$(BUF) lint
	$(MAKE) -s coverage

# Every manifest against the Kubernetes versions README names, rejecting unknown fields.
K8S_VERSIONS := 1.33.0 1.37.0
manifests: $(STAMP)
	for v in $(K8S_VERSIONS); do \
	  $(VENV)/bin/kubernetes-validate --strict --quiet -k $$v deploy/kubernetes/*.yaml || exit 1; \
	done

# Stubs are generated into a scratch dir first so a failed run never leaves corral/v1 half-written.
proto: $(STAMP)
	rm -rf .build/gen && mkdir -p .build/gen
	$(MAKE) -s proto-gen OUT=.build/gen
	cp .build/gen/corral/v1/*.py .build/gen/corral/v1/*.pyi corral/v1/

proto-gen:
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m grpc_tools.protoc \
	  -I protos -I "$$($(PY) -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')" \
	  -I "$$($(PY) -c 'import google.api.annotations_pb2 as m, os; print(os.path.dirname(os.path.dirname(os.path.dirname(m.__file__))))')" \
	  --python_out=$(OUT) --grpc_python_out=$(OUT) --mypy_out=$(OUT) --mypy_grpc_out=$(OUT) \
	  $(PROTO_SRC)

# Fails when the committed stubs differ from what the protos generate.
proto-drift: $(STAMP)
	rm -rf .build/drift && mkdir -p .build/drift
	$(MAKE) -s proto-gen OUT=.build/drift
	diff -r -x __pycache__ -x __init__.py -x py.typed .build/drift/corral/v1 corral/v1 \
	  || (echo "corral/v1 is stale: run 'make proto' and commit the result" >&2; exit 1)

# buf resolves google/api imports from a copy of the installed googleapis-common-protos sources.
.build/protodeps: $(STAMP)
	rm -rf .build/protodeps && mkdir -p .build/protodeps/google/api
	cp "$$($(PY) -c 'import google.api.annotations_pb2 as m, os; print(os.path.dirname(m.__file__))')"/{annotations,http,field_behavior}.proto .build/protodeps/google/api/

$(BUF):
	npm install --silent --no-save --no-audit --no-fund --prefix .build/buf @bufbuild/buf@$(BUF_VERSION)

bench: $(STAMP)
	$(PY) -m bench

bench-full: $(STAMP)
	$(PY) -m bench --full

# The image, built with no image registry: Corral's wheels are made here and the base is
# debootstrapped from Debian's packages (deploy/image/base.sh). BASE=python:3.11-slim builds
# on the official image instead. The build runs with no network: everything is in the context.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# The local base's tag names the script that made it, so a changed script makes a new one.
BASE ?= corral-base:bookworm-$(shell sha256sum deploy/image/base.sh | cut -c1-8)

image: $(STAMP)
	rm -rf .build/image && mkdir -p .build/image/wheels
	$(PY) -m pip wheel -q --disable-pip-version-check --wheel-dir .build/image/wheels .
	case "$(BASE)" in corral-base:*) bash deploy/image/base.sh $(BASE);; esac
	docker build -q --network none -f deploy/Dockerfile --build-arg BASE=$(BASE) \
	  -t corral:$(VERSION) -t corral:dev .build/image
	@docker image inspect -f '{{.Size}}' corral:dev \
	  | awk '{printf "image corral:$(VERSION) (corral:dev): %.0f MB\n", $$1/1e6}'

# PostgreSQL for the compose stack's `ha` profile, on the same local base (apt runs in the
# build, so this one needs the package mirror).
image-postgres:
	case "$(BASE)" in corral-base:*) bash deploy/image/base.sh $(BASE);; esac
	docker build -q --network host -f deploy/image/postgres.Dockerfile --build-arg BASE=$(BASE) \
	  -t corral-postgres:dev deploy/image

clean:
	rm -rf .build .corral .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.*
