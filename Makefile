# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast test-deps lint dev stop clean bench plan status

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(STAMP)

setup: $(STAMP)

## make run: embedded PostgreSQL, demo ERP in the seed's drifted state, then the whole graph through Dagster.
## Only on the embedded demo database: with ERP_DATABASE_URL pointing elsewhere it refuses before any write.
run: setup
	$(BIN)/erp-pipelines run $(ARGS)

## make test: lint, the Debian packages the tests need (chromium, postgresql-15, nodejs/npm; installed when
## missing, which needs root), then the whole suite against a real PostgreSQL and real Dagster.
test: setup lint test-deps
	$(BIN)/pytest $(PYTEST_ARGS)

## make test-fast: the unit tests of the pure functions alone (no database, no Dagster instance; seconds).
test-fast: setup
	$(BIN)/pytest erp_pipelines_tests/unit $(PYTEST_ARGS)

test-deps:
	scripts/install-test-deps.sh

lint: setup
	$(BIN)/ruff check erp_pipelines erp_pipelines_tests bench

## make plan: print the SQL the schema sync would run (ERP_DATABASE_URL / PRISMA_MIGRATIONS_DIR or embedded).
plan: setup
	$(BIN)/erp-pipelines plan

## make status: drift, migration history, rollup ledger and pruned days at a glance; read-only.
status: setup
	$(BIN)/erp-pipelines status

## make dev: the Dagster UI (webserver + daemon) on http://127.0.0.1:$(PORT) against the same instance
## (make dev PORT=3001 for another port); Ctrl-C or SIGTERM stops all of it.
PORT ?= 3000
dev: setup
	$(BIN)/erp-pipelines dev --host 127.0.0.1 --port $(PORT)

## make stop: stop the embedded PostgreSQL server.
stop: setup
	$(BIN)/erp-pipelines db stop

## make clean: remove local state (embedded database, Dagster history) after asking.
clean:
	@read -p "Delete .erp-pipelines/ (embedded database and Dagster history)? [y/N] " ok && [ "$$ok" = y ] \
		&& { test -x $(BIN)/erp-pipelines && $(BIN)/erp-pipelines db stop; rm -rf .erp-pipelines; echo removed; } \
		|| echo kept

## make bench: performance ratios into bench/results.md (BENCH_ARGS=--small for a quick run).
bench: setup
	$(BIN)/python -m bench.run $(BENCH_ARGS)
