# mlserve: `make run` starts the service, `make test` runs every check CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format typecheck pytest pytest-sqlite pytest-postgres install dev clean fuzz

$(BIN)/mlserve: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/mlserve
	$(BIN)/python -m pip install --quiet -e ".[dev,torch,s3,fuzz,gbm,keras]"
	touch $@

install: $(BIN)/mlserve

dev: $(VENV)/.dev

## Start the service on http://$(HOST):$(PORT) with an embedded worker and the demo models.
run: install
	$(BIN)/mlserve serve --demo --host $(HOST) --port $(PORT)

## Lint, format check, type check, then the test suite on SQLite and on PostgreSQL (what CI runs).
test: dev lint typecheck pytest

## Style, formatting, and the package's layers (import-linter contracts in pyproject.toml).
lint:
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

## The suite on SQLite (with coverage) and what touches the database again on the PostgreSQL
## server at MLSERVE_TEST_DATABASE_URL (`.ci/run` sets it; unset: that pass is skipped and says
## so). The two passes run side by side (each is one process, mostly on one core); the
## PostgreSQL pass's output is printed after the SQLite pass's, and either failing fails this.
pytest:
	@if [ -z "$${MLSERVE_TEST_DATABASE_URL:-}" ]; then \
	  $(MAKE) --no-print-directory pytest-sqlite && $(MAKE) --no-print-directory pytest-postgres; \
	else \
	  log=$$(mktemp -t mlserve-pytest-postgres.XXXXXX); \
	  echo "pytest: the PostgreSQL pass runs beside the SQLite pass; its output follows it"; \
	  $(MAKE) --no-print-directory pytest-postgres > "$$log" 2>&1 & postgres=$$!; \
	  trap 'kill $$postgres 2>/dev/null' INT TERM; \
	  $(MAKE) --no-print-directory pytest-sqlite; sqlite=$$?; \
	  wait $$postgres; pg=$$?; \
	  cat "$$log"; rm -f "$$log"; \
	  echo "pytest: SQLite pass exit status $$sqlite, PostgreSQL pass exit status $$pg"; \
	  [ $$sqlite -eq 0 ] && [ $$pg -eq 0 ]; \
	fi

pytest-sqlite:
	MLSERVE_TEST_BACKEND=sqlite OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} \
	  $(BIN)/pytest -p no:cacheprovider --cov=mlserve --cov-report=term:skip-covered

pytest-postgres:
	@if [ -z "$${MLSERVE_TEST_DATABASE_URL:-}" ]; then \
	  echo "pytest-postgres: skipped: MLSERVE_TEST_DATABASE_URL is not set (no PostgreSQL server; .ci/run sets it)"; \
	else \
	  echo "pytest-postgres: the tests that touch the database again, on PostgreSQL (schemas of its own in MLSERVE_TEST_DATABASE_URL)"; \
	  MLSERVE_TEST_BACKEND=postgresql OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} \
	    $(BIN)/pytest -p no:cacheprovider; \
	fi

format:
	$(BIN)/ruff check --fix src tests bench fuzz
	$(BIN)/ruff format src tests bench fuzz

clean:
	rm -rf $(VENV) mlserve-data .pytest_cache .mypy_cache .ruff_cache .coverage

## Coverage-guided fuzzing (atheris) of every parser of outside bytes, FUZZ_SECONDS per
## target (fuzz/targets.py); stops at the first crash, written to crash-* in the cwd.
FUZZ_SECONDS ?= 30
fuzz: dev
	for target in upload predict-records predict-columnar predict-csv predict-v2-binary; do \
	  OMP_NUM_THREADS=1 $(BIN)/python -m fuzz.targets $$target \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -print_final_stats=1 || exit 1; \
	done
