# Two commands on a fresh machine:  `make run` (the service, embedded default)  and  `make test`.
# Everything else here is what they need: a virtualenv from pyproject.toml, and from npm (one
# lockfile, npm workspaces) GraphiQL's assets, the TypeScript SDK packages and the demo's bundle.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
ASSETS := app/graphql/static/graphiql/graphiql.min.js
# `npm run build` writes GraphiQL's files, codegen/typescript/{client,react}/dist and app/demo/static.
WEB_BUILD := .stamps/web-build
PY_SDK_ENV := codegen/python/.venv/.installed
WEB_SOURCES := $(shell find codegen/typescript/client/src codegen/typescript/react/src demo/src \
	codegen/typescript/*/tsup.config.ts demo/build.mjs scripts/build-graphiql.mjs -type f 2>/dev/null)
PYTEST_ARGS ?=
FUZZ_ARGS ?=

.PHONY: run test test-sqlite test-postgres test-ts setup assets lint schema clean fuzz codegen

run: setup
	$(VENV)/bin/syncforge serve

test: setup
	$(MAKE) --no-print-directory test-ts test-sqlite test-postgres

# The TypeScript side's static checks: generated types current, tsc, bundle sizes, typedoc.
# (Its tests against a live server run inside pytest: tests/test_sdk_*.py.)
test-ts: setup
	npm run check

# Each backend runs the same suite; pytest's exit code 5 (nothing collected) is a failure here.
test-sqlite test-postgres: test-%: setup
	@echo "== pytest on $* =="
	@SYNCFORGE_TEST_BACKEND=$* $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests on $*: failing"; exit 1; fi; exit $$rc

setup: $(INSTALLED) $(WEB_BUILD) $(PY_SDK_ENV)

# The Python SDK's own environment (tests/test_python_sdk.py runs it); its pins never meet the server's.
$(PY_SDK_ENV): codegen/python/pyproject.toml codegen/python/constraints.txt
	$(MAKE) -C codegen/python env PYTHON=$(PYTHON)

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

$(WEB_BUILD): node_modules/.package-lock.json $(WEB_SOURCES)
	npm run build
	@mkdir -p $(dir $@) && touch $@

$(ASSETS): $(WEB_BUILD)

assets: $(WEB_BUILD)

# Regenerate the SDKs' code from schema.graphql (after `make schema`).
codegen: setup
	npm run codegen
	$(MAKE) -C codegen/python generate

# The larger fuzz run of the whole API against a fresh server (tests/test_fuzz.py is the bounded one):
# make fuzz FUZZ_ARGS="--examples 50 --seed 7"
fuzz: setup
	$(PY) bench/fuzz.py $(FUZZ_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

schema: setup
	$(VENV)/bin/syncforge export-schema --output schema.graphql

clean:
	rm -rf $(VENV) node_modules app/graphql/static/graphiql app/demo/static .stamps \
	  codegen/typescript/*/dist codegen/typescript/docs
	$(MAKE) -C codegen/python clean
