PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A MongoDB-wire server for the crash tests, in its own virtualenv: GPL-2.0, test-only, never imported by the app.
WIRE_VENV := .venv-wire
WIRE_STAMP := $(WIRE_VENV)/.installed
# `make run STORE=local`: the app on that wire server with a data directory, so a demo keeps its cases.
STORE ?= memory
LOCAL_DATA := .data
LOCAL_STORE_PORT ?= 27117

.PHONY: run test test-wire-all bench schema clean browser-tools graphiql-assets

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

# GraphiQL's files (react, graphiql, its explorer plugin) are npm packages too, served by the app from node_modules/.
# Without npm `make run` still starts, and GET /graphql in a browser says that GraphiQL is not installed.
graphiql-assets:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory node_modules/.installed; \
	else echo "npm not found: GraphiQL is not installed (install Node 20, then make run again); POST /graphql works"; fi

# The supergraph of our subgraph and the example CRM (tests/gateway/crm.graphql), composed by Apollo's composer
# (deploy/gateway/compose.mjs; a composition error fails the target). The URLs are where `make run` and
# `node tests/gateway/crm.mjs` listen; a deployment passes its own, and an empty CRM_URL composes ours alone:
# make supergraph CASES_URL=http://app:8000/graphql CRM_URL=   (what deploy/compose.yaml's gateway mounts)
CASES_URL ?= http://127.0.0.1:8000/graphql
CRM_URL ?= http://127.0.0.1:4001/graphql
.PHONY: supergraph
supergraph: node_modules/.installed
	node deploy/gateway/compose.mjs --subgraph cases=$(CASES_URL)=graphql/schema.graphql \
		$(if $(CRM_URL),--subgraph crm=$(CRM_URL)=tests/gateway/crm.graphql) --out graphql/supergraph.graphql
	@echo "wrote graphql/supergraph.graphql"

ifeq ($(STORE),local)
# The dev secret is generated once per data directory: dev tokens are refused on a real store with the public default.
run: $(STAMP) $(WIRE_STAMP) graphiql-assets
	mkdir -p $(LOCAL_DATA)/store && : > $(LOCAL_DATA)/secantusd.toml
	test -s $(LOCAL_DATA)/dev-secret || $(BIN)/python -c 'import secrets; print(secrets.token_hex(32))' > $(LOCAL_DATA)/dev-secret
	$(WIRE_VENV)/bin/secantusd-py --config $(LOCAL_DATA)/secantusd.toml --host 127.0.0.1 --port $(LOCAL_STORE_PORT) \
		--storage-path $(LOCAL_DATA)/store > $(LOCAL_DATA)/store.log 2>&1 & store=$$!; \
	trap 'kill $$store; wait $$store' EXIT INT TERM; \
	MONGODB_URI='mongodb://127.0.0.1:$(LOCAL_STORE_PORT)/?journal=true' DEMO_DATA=1 \
		AUTH_DEV_SECRET=$$(cat $(LOCAL_DATA)/dev-secret) $(BIN)/python server.py
else
run: $(STAMP) graphiql-assets
	$(BIN)/python server.py
endif

# Two store lanes: the whole suite on mongomock, then the wire lane's subset (tests/conftest.py) on the wire server.
# Both always run; either failing fails `make test`.
test: $(STAMP) $(WIRE_STAMP) browser-tools
	$(BIN)/python -m pytest -q --store=memory; memory=$$?; \
	$(BIN)/python -m pytest -q --store=wire -m wire_lane --ignore=tests/kafka; wire=$$?; \
	echo "store lanes: memory exit $$memory, wire exit $$wire"; test $$memory -eq 0 && test $$wire -eq 0

# The whole non-Kafka suite on the wire server (about 11 minutes on 2 cores).
test-wire-all: $(STAMP) $(WIRE_STAMP)
	$(BIN)/python -m pytest -q --store=wire --ignore=tests/kafka

# The load generator: Debian's wrk (C, one event loop per thread), so the client is not the bottleneck; without it
# bench/load.py falls back to aiohttp client processes and says so in its output.
bench: $(STAMP) $(WIRE_STAMP)
	@command -v wrk >/dev/null || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq wrk >/dev/null 2>&1; } \
		|| echo "could not install wrk (apt-get install -y wrk): the bench falls back to aiohttp client processes"
	$(BIN)/python -m bench.run_all

schema: $(STAMP)
	$(BIN)/python -m schema.export > graphql/schema.graphql
	$(BIN)/python -m access.policy_table --write
	$(BIN)/python -m consumers.lifecycle --write
	$(BIN)/python -m access.panel_views --write

clean:
	rm -rf $(VENV)
