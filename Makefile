# The project's interface: every target installs what it needs.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= $(shell command -v python3.12 || command -v python3)
VENV := .venv
TOOLS := .venv-tools
BIN := $(VENV)/bin
export PYTHONPATH := layers/common:.
export SAM_CLI_TELEMETRY := 0

.PHONY: help setup tools run redrive sync test lint format build deploy bench chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements-dev.txt layers/common/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else "Python 3.12 is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

$(TOOLS)/bin/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	@touch $@

setup: $(BIN)/.installed ## create the virtualenv and install everything

tools: $(TOOLS)/bin/.installed ## install SAM CLI and cfn-lint in their own virtualenv

run: setup ## run the service locally on http://127.0.0.1:3000 (embedded Postgres unless DATABASE_URL)
	$(BIN)/python -m local.run

redrive: setup ## move the running local stack's dead-letter messages back to the ingest queue
	$(BIN)/python -m local.redrive

sync: setup ## RPApos sync of the running local stack's demo connection, progress per entity (ARGS="--mode ...")
	$(BIN)/python -m local.sync $(ARGS)

test: setup ## run unit, integration and e2e tests against an embedded Postgres
	$(BIN)/python -m pytest

lint: setup tools ## ruff, ruff format --check, mypy, cfn-lint, sam validate --lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/common/pos_gateway functions local bench tests
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

build: tools ## sam build (no containers)
	PATH="$(abspath $(TOOLS))/bin:$$PATH" $(TOOLS)/bin/sam build

deploy: build ## sam deploy --guided
	$(TOOLS)/bin/sam deploy --guided

bench: setup ## throughput and cold-import benchmarks, each beside its baseline
	$(BIN)/python -m bench.run

chaos: setup ## bounded chaos run on a stack of its own: load, duplicates, faults, then every invariant (ARGS="--quick ...")
	$(BIN)/python -m local.chaos $(ARGS)

clean: ## remove build output and local state
	rm -rf .aws-sam .local .local-chaos .pytest_cache .mypy_cache .ruff_cache
