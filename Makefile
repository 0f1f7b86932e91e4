# Every target sets up what it needs: a local virtualenv in .venv with meshnet installed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WEB := demo_game/web
WEB_STAMP := $(WEB)/node_modules/.package-lock.json
CHROMIUM := /usr/bin/chromium
REDIS_SERVER := /usr/bin/redis-server
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install web browser redis test demo demo-workers demo-cluster bench lint docs dist clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev,docs]'
	touch $(STAMP)

# The browser page's npm packages (cbor-x; playwright-core for its test), from the npm registry.
web: $(WEB_STAMP)

$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	npm ci --prefix $(WEB) --no-audit --no-fund --ignore-scripts --omit=optional
	touch $(WEB_STAMP)

# Debian's Chromium, for the browser page's test; skipped when it is already installed.
browser:
	@[ -x $(CHROMIUM) ] || { $(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }

# Debian's redis-server, for the Redis discovery tests (they start their own server on a
# free loopback port) and make demo-cluster; skipped when it is already installed.
redis:
	@[ -x $(REDIS_SERVER) ] || { $(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server; }

test: install web browser redis
	$(VENV)/bin/mkdocs build --strict --quiet
	$(PY) -m pytest -q

# Starts the demo game's node, runs the client once against it, keeps the node until Ctrl-C.
demo: install web
	$(PY) -m demo_game demo

# The demo as two worker processes sharing make demo's ports (demo_game/workers.toml:
# [node] workers = 2); runs the client once against them, keeps them until Ctrl-C.
demo-workers: install web
	$(PY) -m demo_game demo --workers

# The demo on four nodes (front, game, accounts, subgame: demo_game/cluster/*.toml), discovering
# each other through a redis-server of its own on 127.0.0.1:6390 (AOF in var/demo_redis); runs
# the client once against the front (its gold into the subgame and back), keeps everything
# until Ctrl-C, stops Redis last.
demo-cluster: install web redis
	$(PY) -m demo_game demo-cluster

# The API documentation (mkdocs + mkdocstrings) into site/; any warning fails it, and so
# does a public name without a docstring or a module left out of it (docs/docstrings.py).
docs: install
	$(VENV)/bin/mkdocs build --strict

# The wheel and sdist, into dist/; the wheel carries the page's cbor-x, hence web.
dist: install web
	$(PY) -m build --outdir dist .

bench: install redis
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

LINTED := meshnet demo_game tests bench build_backend docs

lint: install
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache $(WEB)/node_modules \
		*.egg-info build dist site
