# Two commands on a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
LAB_PORT ?= 8888

.PHONY: demo test venv deps chromium lint bench fuzz clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

venv deps: $(VENV)/.installed

# Debian's Chromium drives the browser tests; installed when we may (root), else say how.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	else echo "The browser tests need Debian's chromium: sudo apt-get install -y chromium" >&2; exit 1; fi

## The demo: the simulator on :$(PORT) and JupyterLab on the quick-start notebook.
## `make demo SERVERS=3`: three simulators, on :$(PORT) and the next two ports.
SERVERS ?= 1
demo: deps
	@$(PY) -m pixery_widgets.demo --port $(PORT) --servers $(SERVERS) --lab-port $(LAB_PORT)

## The whole test suite, browser tests included.
test: deps chromium
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: deps
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: deps
	$(PY) -m benchmarks

## Every answer parser fuzzed far longer than CI does (minutes, random examples).
fuzz: deps
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q tests/test_fuzz_parsers.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts benchmarks/results
