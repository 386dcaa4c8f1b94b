PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A MongoDB-wire server for the crash tests, in its own virtualenv: GPL-2.0, test-only, never imported by the app.
WIRE_VENV := .venv-wire
WIRE_STAMP := $(WIRE_VENV)/.installed

.PHONY: run test bench schema clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(WIRE_STAMP):
	$(PYTHON) -m venv $(WIRE_VENV)
	$(WIRE_VENV)/bin/pip install --quiet --upgrade pip
	$(WIRE_VENV)/bin/pip install --quiet secantusdb==0.7.0b3
	touch $(WIRE_STAMP)

run: $(STAMP)
	$(BIN)/python server.py

test: $(STAMP) $(WIRE_STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

schema: $(STAMP)
	$(BIN)/python -m schema.export > graphql/schema.graphql
	$(BIN)/python -m access.policy_table --write
	$(BIN)/python -m consumers.lifecycle --write
	$(BIN)/python -m access.panel_views --write

clean:
	rm -rf $(VENV)
