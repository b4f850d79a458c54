# Two commands do all setup on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install bytecode lint clean

$(STAMP): pyproject.toml setup.py triage/analysis/_md5lanes.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# An editable install leaves the project's own modules without compiled bytecode, which Python
# then writes on first import, unless PYTHONDONTWRITEBYTECODE is set (as on many servers and
# containers): then every command compiles them again (40 ms of each `triage scan`, in the
# command and in its fork server). Compiled here, as pip compiles what it installs; a module
# edited later is compiled again here (compileall skips those unchanged), and Python never uses
# bytecode older than its source.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q triage scoring workers api

install: bytecode

## Embedded shape: SQLite under ./var, local worker, API on 127.0.0.1:8000.
run: install
	$(BIN)/triage db upgrade
	$(BIN)/triage users bootstrap-admin
	$(BIN)/triage serve

## Lint, then the whole test suite (PostgreSQL/Redis tests skip on a laptop without them, never under CI=true).
test: install lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check triage scoring workers api tests bench
	$(BIN)/ruff format --check triage scoring workers api tests bench
	$(BIN)/mypy triage scoring workers api tests bench

clean:
	rm -rf $(VENV) var tests/images/build triage/analysis/*.so
