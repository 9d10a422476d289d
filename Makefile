# Two commands on a fresh machine:  `make run` (the service, embedded default)  and  `make test`.
# Everything else here is what they need: a virtualenv from pyproject.toml, GraphiQL's assets from npm.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
ASSETS := app/graphql/static/graphiql/graphiql.min.js
PYTEST_ARGS ?=
FUZZ_ARGS ?=

.PHONY: run test test-sqlite test-postgres setup assets lint schema clean fuzz

run: setup
	$(VENV)/bin/syncforge serve

test: setup
	$(MAKE) --no-print-directory test-sqlite test-postgres

# Each backend runs the same suite; pytest's exit code 5 (nothing collected) is a failure here.
test-sqlite test-postgres: test-%: setup
	@echo "== pytest on $* =="
	@SYNCFORGE_TEST_BACKEND=$* $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests on $*: failing"; exit 1; fi; exit $$rc

setup: $(INSTALLED) $(ASSETS)

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

$(ASSETS): node_modules/.package-lock.json scripts/build-graphiql.mjs
	npm run build

assets: $(ASSETS)

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
	rm -rf $(VENV) node_modules app/graphql/static/graphiql
