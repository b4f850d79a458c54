# Two commands do all setup on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint clean

$(STAMP): pyproject.toml setup.py triage/analysis/_md5lanes.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Embedded shape: SQLite under ./var, local worker, API on 127.0.0.1:8000.
run: $(STAMP)
	$(BIN)/triage db upgrade
	$(BIN)/triage users bootstrap-admin
	$(BIN)/triage serve

## The whole test suite (PostgreSQL/Redis tests skip on a laptop without them, never under CI=true).
test: $(STAMP)
	$(BIN)/ruff check triage scoring workers api tests bench
	$(BIN)/ruff format --check triage scoring workers api tests bench
	$(BIN)/mypy triage scoring workers api tests bench
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check triage scoring workers api tests bench
	$(BIN)/ruff format --check triage scoring workers api tests bench
	$(BIN)/mypy triage scoring workers api tests bench

clean:
	rm -rf $(VENV) var tests/images/build triage/analysis/*.so
