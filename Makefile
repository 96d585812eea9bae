# One entry point for people and CI. `make test` sets everything up from scratch.
VENV ?= .venv
PY := $(VENV)/bin/python
# Every workflow actionlint checks: this repository's own and the one seeded into `spitikos`.
WORKFLOWS := .github/workflows/*.yaml components/seed/release.yaml

# The Pulumi CLI version, pinned here only: the workflows' `pulumi-version` must say the same
# (tests/test_makefile.py), and `make up` installs exactly this one when `pulumi` is missing.
PULUMI_VERSION := 3.272.0
# Where it goes: a folder of the project that keeps itself out of git.
PULUMI_ROOT ?= $(CURDIR)/.pulumi-cli
# `make up PULUMI_INSTALL=no` stops instead, printing the install command.
PULUMI_INSTALL ?= yes
STACK ?= pi5

.PHONY: test lint pytest up plan e2e

test: lint pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@if command -v shellcheck >/dev/null; then shellcheck .ci/run tools/up tools/migration-check tools/e2e; \
	else echo "note: shellcheck is not on PATH: run: scripts, .ci/run and tools/up are not shell-checked"; fi
	$(VENV)/bin/actionlint $(WORKFLOWS)

pytest: $(VENV)/.installed
	$(PY) -m pytest

# The whole platform offline: no CLI, network or credentials. `make plan OUT=plan-out` also writes files.
plan: $(VENV)/.installed
	$(PY) -m spitikos plan --stack $(STACK) $(if $(OUT),--out $(OUT))

# Deploy a stack (`make up STACK=lab`) with the program's dependencies from the same .venv the
# tests use. The stack is created only on the local file backend, never on a shared one.
up: $(VENV)/.installed
	STACK='$(STACK)' PULUMI_VERSION='$(PULUMI_VERSION)' PULUMI_ROOT='$(PULUMI_ROOT)' \
	PULUMI_INSTALL='$(PULUMI_INSTALL)' tools/up

# The in-cluster platform up, checked and destroyed with the real CLI on whatever cluster KUBECONFIG
# points at (README, "What the e2e run proves"); CI runs it on kind. Installs the pinned CLI if missing.
e2e: $(VENV)/.installed
	PY='$(PY)' PULUMI_VERSION='$(PULUMI_VERSION)' PULUMI_ROOT='$(PULUMI_ROOT)' tools/e2e

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

.PHONY: snapshot mutants  # `mutants/` is also the directory mutmut works in

# The reviewed snapshot of the platform (tests/snapshots/pi5/): rewrite it after an intended change,
# then review its diff. The tests fail on any difference.
snapshot: $(VENV)/.installed
	$(PY) -c 'from spitikos.plan import write_snapshot; print("Wrote", write_snapshot("pi5"))'

# Mutation testing of components/ (see [tool.mutmut] in pyproject.toml); long, so never part of `make test` or CI.
mutants: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet -r requirements-mutants.txt
	rm -rf mutants
	# mutmut exits non-zero only when it could not run (stats, clean tests); survivors are listed below.
	$(VENV)/bin/mutmut run --max-children 2
	$(VENV)/bin/mutmut results --all false | tee mutants/results.txt

.PHONY: migration-check refresh-fixtures

# The organization's patches (docs/migration/) applied to fresh clones of its repositories.
# Needs the network: without it, says so and fails (exit 2). The offline check is `make test`.
migration-check:
	tools/migration-check

# The organization's files the tests hold the patches against (tests/fixtures/spitikos/SOURCES.yaml),
# fetched again; MOVE="charts=<commit> ..." moves repositories to other commits first.
refresh-fixtures: $(VENV)/.installed
	$(PY) tools/refresh_fixtures.py $(MOVE)
