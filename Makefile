# postmon: the two README commands are `make demo` and `make test`.
# Every target is idempotent and works from a fresh clone on Debian/Ubuntu.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install services-up services-down services-status test lint typecheck unit demo bench eval clean

$(BIN)/python:
	@$(PY) -c 'import sys; assert sys.version_info >= (3, 11), "postmon needs Python >= 3.11"' \
	  || { echo "error: Python >= 3.11 is required (set PY=python3.11)"; exit 2; }
	@$(PY) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3-venv missing; installing it with apt-get"; \
	  apt-get install -y -q python3-venv >/dev/null && $(PY) -m venv $(VENV); }

# Re-install only when pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

services-up: install
	$(BIN)/postmon services up

services-down: install
	$(BIN)/postmon services down

services-status: install
	$(BIN)/postmon services status

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

test: install services-up lint typecheck
	bash scripts/ensure-chromium.sh
	$(BIN)/pytest $(PYTEST_ARGS)

demo: install services-up
	$(BIN)/postmon demo --out out

BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP) services-up
	$(BIN)/python -m bench --out out/bench.json

eval: install
	$(BIN)/python scripts/eval.py

clean: services-down
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
