# Herald: `make run` (quickstart: SQLite + embedded Redis) and `make test` (PostgreSQL + Redis).
# Every target creates and reuses .venv itself; `make` alone lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help run test lint bench clean
.NOTPARALLEL:  # one pip at a time in .venv

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z]+:.*## / {printf "  make %-6s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: $(VENV)/.production $(VENV)/.herald ## the whole stack on SQLite + embedded Redis; prints URL, token, ready
	$(BIN)/herald devserver

test: $(VENV)/.testing $(VENV)/.herald ## the test suite on PostgreSQL + Redis (PYTEST_ARGS=... to select)
	bin/ensure-services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.development $(VENV)/.herald ## ruff, ruff format --check, mypy, import-linter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.testing $(VENV)/.herald ## benchmarks (same-run ratios)
	bin/ensure-services
	$(BIN)/python -m bench

clean: ## remove .venv, var/ (the SQLite database, dev token) and caches
	rm -rf $(VENV) var .pytest_cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.production: requirements/production.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/production.txt
	touch $@

$(VENV)/.testing: requirements/testing.txt requirements/production.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/testing.txt
	touch $@ $(VENV)/.production

$(VENV)/.development: requirements/development.txt requirements/testing.txt requirements/production.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/development.txt
	touch $@ $(VENV)/.testing $(VENV)/.production

# the `herald` command: an editable install of this checkout (its dependencies come pinned
# from the requirements files above, so --no-deps)
$(VENV)/.herald: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --quiet --no-deps --editable .
	touch $@
