PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A MongoDB-wire server for the crash tests, in its own virtualenv: GPL-2.0, test-only, never imported by the app.
WIRE_VENV := .venv-wire
WIRE_STAMP := $(WIRE_VENV)/.installed

.PHONY: run test bench schema clean browser-tools

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

# The /panel page's browser tests: axe-core from npm (package-lock.json) and Debian's chromium, driven by the
# Python playwright package from the test extras. Never a browser download: the tests use /usr/bin/chromium.
# Either missing only fails those tests, which name it; the rest of the suite still runs.
node_modules/.installed: package.json package-lock.json
	@PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund && touch $@ \
		|| echo "npm ci failed: the /panel browser tests will fail (axe-core missing)"

browser-tools: node_modules/.installed
	@test -x /usr/bin/chromium || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium >/dev/null 2>&1; } \
		|| echo "could not install chromium (apt-get install -y chromium): the /panel browser tests will fail"

run: $(STAMP)
	$(BIN)/python server.py

test: $(STAMP) $(WIRE_STAMP) browser-tools
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
