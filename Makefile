# Every target sets up what it needs: a local virtualenv in .venv with meshnet installed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

demo: install
	$(PY) -m meshnet node examples/hello.toml

bench: install
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lint: install
	$(VENV)/bin/ruff check meshnet demo_game tests bench
	$(VENV)/bin/ruff format --check meshnet demo_game tests bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
