# Two commands on a fresh machine: `make run` and `make test`. Every target does its own set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '.[dev]'
	touch $(STAMP)

.PHONY: setup
setup: $(STAMP) system-deps ## Create the virtualenv and install system packages (bubblewrap)

.PHONY: system-deps
system-deps: ## Install bubblewrap when missing (needs root; prints what to do otherwise)
	@scripts/ensure-system-deps.sh

.PHONY: run
run: setup ## Start the service on http://$(HOST):$(PORT) (local sandbox backend by default)
	$(PY) -m functions serve --host $(HOST) --port $(PORT)

.PHONY: lint
lint: $(STAMP) ## ruff, mypy --strict and import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check functions runners tests
	$(VENV)/bin/mypy functions runners/runner tests
	$(VENV)/bin/lint-imports

.PHONY: test-unit
test-unit: setup ## Unit, integration and security tests (no cluster)
	$(VENV)/bin/pytest -m "not cluster" $(PYTEST_ARGS)

.PHONY: test
test: setup lint ## Everything: lint, type checks, layering, every test suite
	$(VENV)/bin/pytest $(PYTEST_ARGS)
