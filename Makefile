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

LAUNCHER := build/sandbox-launch

.PHONY: setup
setup: $(STAMP) system-deps $(LAUNCHER) ## Create the virtualenv, install system packages (bubblewrap, libseccomp, gcc, missing toolchains), build the sandbox's launcher

# Static: the sandbox execs it before every program, and a dynamic loader would cost a millisecond each time.
$(LAUNCHER): functions/backends/local/launch.c | system-deps
	@mkdir -p $(@D)
	cc -O2 -static -Wall -Wextra -Werror -o $@ $<

.PHONY: system-deps
system-deps: ## Install bubblewrap, libseccomp, a C compiler and missing language toolchains (needs root; prints what to do otherwise)
	@scripts/ensure-system-deps.sh

.PHONY: run
run: setup ## Start the service on http://$(HOST):$(PORT) (local sandbox backend by default)
	$(PY) -m functions serve --host $(HOST) --port $(PORT)

.PHONY: lint
lint: $(STAMP) ## ruff, mypy --strict and import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check functions runners tests cdk app.py scripts
	$(VENV)/bin/mypy functions runners/runner tests cdk app.py scripts
	$(VENV)/bin/lint-imports

.PHONY: test-unit
test-unit: setup ## Unit, integration and security tests (no cluster)
	$(VENV)/bin/pytest -m "not cluster" $(PYTEST_ARGS)

.PHONY: cluster-build
cluster-build: $(STAMP) ## Build (once, cached) etcd, kube-apiserver, controller-manager, scheduler, kustomize with Go
	$(PY) -m tests.cluster.build

.PHONY: cluster-up
cluster-up: setup cluster-build ## Start the test Kubernetes control plane + node agent in the background (.cluster/)
	$(PY) -m tests.cluster.harness up --dir .cluster

.PHONY: cluster-down
cluster-down: $(STAMP) ## Stop everything `make cluster-up` started
	$(PY) -m tests.cluster.harness down --dir .cluster

.PHONY: test-cluster
test-cluster: setup cluster-build ## The real-control-plane suite alone (tests/cluster)
	$(VENV)/bin/pytest tests/cluster $(PYTEST_ARGS)

.PHONY: test
test: setup lint cluster-build ## Everything: lint, type checks, layering, every test suite
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# ---- Deploy: Lambda bundle, CDK app, runner images, preflight. docs/deploy.md explains the flow. ----------
ENV ?= dev
CDK_ARGS ?=
# e.g. PREFLIGHT_ARGS="--egress-target 169.254.169.254:80" (python -m functions preflight --help)
PREFLIGHT_ARGS ?=
CDK_CLI_VERSION ?= 2.1148.1
CDK := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 npx --yes aws-cdk@$(CDK_CLI_VERSION)
CDK_CONTEXT = -c environment=$(ENV) $(CDK_ARGS)
# `make synth` is offline: a dummy account/region unless the environment names real ones.
SYNTH_ACCOUNT ?= 123456789012
SYNTH_REGION ?= us-east-1
# Recursively expanded: the AWS CLI is only asked when an ECR target runs.
AWS_REGION ?= $(shell aws configure get region 2>/dev/null)
AWS_ACCOUNT_ID ?= $(shell aws sts get-caller-identity --query Account --output text 2>/dev/null)
ECR_REGISTRY ?= $(AWS_ACCOUNT_ID).dkr.ecr.$(AWS_REGION).amazonaws.com
IMAGE_TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
IMAGE_PLATFORM ?= linux/amd64
# language=image pairs from runners/*/language.json: a new language folder needs no Makefile change.
RUNNER_IMAGES = $(shell $(PY) -c 'from pathlib import Path; from functions.core.languages import load_registry; print(" ".join(f"{l.name}={l.image}" for l in load_registry(Path("runners")).all()))')

.PHONY: build
build: $(STAMP) ## Build the Lambda bundle in build/lambda (pip wheels for Lambda's platform, no Docker)
	$(PY) scripts/build_lambda_bundle.py

.PHONY: synth
synth: build ## Synthesize the CDK app offline into cdk.out (cdk-nag enforced), then cfn-lint the templates
	rm -rf cdk.out
	CDK_DEFAULT_ACCOUNT=$${CDK_DEFAULT_ACCOUNT:-$(SYNTH_ACCOUNT)} CDK_DEFAULT_REGION=$${CDK_DEFAULT_REGION:-$(SYNTH_REGION)} \
		CDK_CONTEXT_JSON='{"environment": "$(ENV)"}' JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(PY) app.py
	$(VENV)/bin/cfn-lint --non-zero-exit-code error cdk.out/*.template.json
	@ls -1 cdk.out/*.template.json

.PHONY: bootstrap
bootstrap: build ## Once per account/region: cdk bootstrap (asset bucket + image repository the deploy uses)
	$(CDK) bootstrap $(CDK_CONTEXT)

.PHONY: diff
diff: build ## Show what `make deploy` would change (ENV=dev|prod, CDK_ARGS="-c key=value ...")
	$(CDK) diff $(CDK_CONTEXT)

.PHONY: deploy
deploy: build ## Deploy the stack: runner images, Lambda, API, EKS access, monitoring (PREFLIGHT=1: preflight first)
	$(if $(PREFLIGHT),$(MAKE) --no-print-directory preflight ENV=$(ENV),)
	$(CDK) deploy $(CDK_CONTEXT)

.PHONY: preflight
preflight: $(STAMP) ## Check the cluster isolates runner pods as the deployed stack ENV needs (PREFLIGHT_ARGS=...)
	$(PY) -m functions preflight --stack CodeExec-$(ENV) $(PREFLIGHT_ARGS)

.PHONY: destroy
destroy: build ## Delete the stack (prod keeps its ECR repositories and logs)
	$(CDK) destroy $(CDK_CONTEXT)

.PHONY: create-ecr-repos
create-ecr-repos: $(STAMP) ## Create code-exec-runner-<language> ECR repos (scan on push, immutable tags, lifecycle)
	@for pair in $(RUNNER_IMAGES); do image=$${pair#*=}; \
		if aws ecr describe-repositories --region "$(AWS_REGION)" --repository-names "$$image" >/dev/null 2>&1; then \
			echo "exists:  $$image"; continue; fi; \
		aws ecr create-repository --region "$(AWS_REGION)" --repository-name "$$image" \
			--image-scanning-configuration scanOnPush=true --image-tag-mutability IMMUTABLE \
			--encryption-configuration encryptionType=AES256 >/dev/null || exit 1; \
		aws ecr put-lifecycle-policy --region "$(AWS_REGION)" --repository-name "$$image" \
			--lifecycle-policy-text file://scripts/ecr-lifecycle-policy.json >/dev/null || exit 1; \
		echo "created: $$image"; done

.PHONY: login-ecr
login-ecr: ## docker login to this account's ECR registry
	aws ecr get-login-password --region "$(AWS_REGION)" | docker login --username AWS --password-stdin "$(ECR_REGISTRY)"

.PHONY: build-push-runners
build-push-runners: $(STAMP) ## buildx + push every runner image as $(ECR_REGISTRY)/<image>:$(IMAGE_TAG) (IMAGE_PLATFORM=linux/amd64)
	@for pair in $(RUNNER_IMAGES); do language=$${pair%%=*}; image=$${pair#*=}; \
		echo "building $$image:$(IMAGE_TAG) for $(IMAGE_PLATFORM)"; \
		docker buildx build --platform "$(IMAGE_PLATFORM)" --file "runners/$$language/Dockerfile" \
			--tag "$(ECR_REGISTRY)/$$image:$(IMAGE_TAG)" --provenance=false --push runners/ || exit 1; done

.PHONY: deploy-prebuilt
deploy-prebuilt: create-ecr-repos login-ecr build-push-runners build ## Build and push the images yourself, then deploy pointing at them
	$(CDK) deploy $(CDK_CONTEXT) -c imageSource=registry -c imageTag=$(IMAGE_TAG)

.PHONY: bench-bundle
bench-bundle: build ## Lambda bundle size and cold import time (Python 3.12, the Lambda runtime's version)
	$(PY) -m tests.bench.bundle_bench

.PHONY: bench
bench: bench-bundle bench-runs bench-load ## Benchmarks: bundle size, cold start, sandbox and service overhead, the server under load

.PHONY: bench-runs
bench-runs: setup ## Hello world per language: bare toolchain vs runner vs sandbox vs HTTP handler (ratios)
	$(PY) -m tests.bench.bench_runs

.PHONY: bench-load
bench-load: setup ## The `make run` server under 50 concurrent clients and sequential runs: p50/p99, runs/s, 503 share
	$(PY) -m tests.bench.load_bench
