# The two commands: `make run` (set up, then start everything) and `make test` (set up, then
# the whole test suite). Set-up creates .venv/ from the locked, hash-checked requirements:
# requirements-dev.lock here (runtime + `handoff dev` + test + lint tools); the production image
# installs requirements.lock (runtime only). `make lock` recompiles both after pyproject changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser-tools run test test-fast lint typecheck lock bench clean

setup: $(STAMP)

$(STAMP): requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Handoff needs Python 3.11 or newer" if sys.version_info < (3, 11) else 0)'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: setup
	$(BIN)/handoff dev

# axe-core and Lighthouse (npm, locked in package-lock.json): the browser tests inject axe-core into
# pages and run Lighthouse on the public pages. Without npm those tests skip on a developer's
# machine; in CI they fail instead.
browser-tools:
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "make: npm not found; the browser accessibility checks will skip"; \
	elif [ ! node_modules/.package-lock.json -nt package-lock.json ]; then \
	  npm ci --ignore-scripts --no-audit --no-fund --silent; \
	fi

# Spread over worker processes (pytest-xdist), a test module to a worker: most of the suite
# waits on servers and processes, so more workers than cores still pays.
TEST_WORKERS ?= 3
XDIST := -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

test: setup browser-tools
	$(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

# The quick loop while working: unit tests and the fast integration tests, in under a minute.
# Leaves out the whole-system tests (e2e), the fault drills, the slow integration tests and the
# PostgreSQL runs of the database tests (SQLite only), all of which `make test` runs.
test-fast: setup
	HANDOFF_TEST_POSTGRES_URL= $(BIN)/pytest $(XDIST) -m "not slow and not e2e and not drill" $(PYTEST_ARGS)

# Every benchmark, then the API fuzzing at its larger budget, as one report beside the machine it
# ran on: bench-report/report.md and report.json (not tests: an aim not met does not fail it; a
# benchmark that breaks does). The directory one drives wrk (Debian package `wrk`).
# `make bench BENCH_ARGS=--quick` is a smoke run at the smallest sizes.
bench: setup
	$(BIN)/python -m tests.bench.report $(BENCH_ARGS)

# Lint and format check (ruff), then types (mypy); CI runs both before the tests.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

LOCK := uv pip compile --quiet --generate-hashes --python-version 3.11 pyproject.toml deploy/build-requirements.in
# Litestar requires polyfactory (and so Faker) only to invent examples for OpenAPI documents;
# Handoff's documents use none, so the image leaves them out (tests/unit/test_deploy.py checks it).
TEST_DATA_TOOLS := --no-emit-package polyfactory --no-emit-package faker
lock:
	$(LOCK) $(TEST_DATA_TOOLS) -o requirements.lock
	$(LOCK) --extra dev --extra test --extra lint -o requirements-dev.lock

clean:
	rm -rf $(VENV) build *.egg-info node_modules
