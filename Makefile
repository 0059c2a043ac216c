# supportgw: two commands from a fresh clone.
#   make run   - install into .venv, write supportgw.toml if missing, migrate, run the gateway
#   make test  - install with test extras, run the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install init bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

init: install
	$(BIN)/supportgw init

run: init
	$(BIN)/supportgw run

# PostgreSQL and Dovecot tests need their servers; on a machine without them,
# SUPPORTGW_ALLOW_SKIP=1 make test skips those tests and says so loudly.
# The corpus tests read ../shared/corpora (or $$SUPPORTGW_CORPORA); without it they
# skip and the run ends by saying so (tests/conftest.py). .ci/run requires them.
test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/ingest.py 2000

clean:
	rm -rf var .pytest_cache
