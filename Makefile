# Herald: `make run` (quickstart: SQLite + embedded Redis) and `make test` (PostgreSQL + Redis).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test lint bench clean

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

run: $(VENV)/.production
	bin/run-dev

test: $(VENV)/.testing
	bin/ensure-services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.development
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.testing
	bin/ensure-services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache
