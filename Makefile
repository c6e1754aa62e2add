# mlserve: `make run` starts the service, `make test` runs every check CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format typecheck pytest install dev clean

$(BIN)/mlserve: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/mlserve
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/mlserve

dev: $(VENV)/.dev

## Start the service on http://$(HOST):$(PORT) with an embedded worker and the demo models.
run: install
	$(BIN)/mlserve serve --demo --host $(HOST) --port $(PORT)

## Lint, format check, type check, then the test suite (what CI runs).
test: dev lint typecheck pytest

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck:
	$(BIN)/mypy

pytest:
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/pytest -p no:cacheprovider --cov=mlserve --cov-report=term:skip-covered

format:
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

clean:
	rm -rf $(VENV) mlserve-data .pytest_cache .mypy_cache .ruff_cache .coverage
