# Two commands do all set-up: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit protos check-protos tools screenshots bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meshtui demo

# System programs the real-world tests use (iptables, nginx, wrk, tmux, ...);
# installs what is missing when run as root, never fails the build.
tools:
	bash scripts/install-tools.sh

lint: $(STAMP)
	$(BIN)/ruff check meshtui tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP) tools lint
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/model

protos: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH bash scripts/gen_protos.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Real captures of the running demo, one SVG per main view.
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py
