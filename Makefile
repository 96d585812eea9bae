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

.PHONY: test lint pytest up plan cli help

# Plain `make` is `make test`, as the README's first lines say; `make help` lists the targets.
test: lint pytest  ## ruff, actionlint and pytest, setting up .venv first (the whole check)

help:  ## this list
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / { printf "  make %-9s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

lint: $(VENV)/.installed  ## ruff, ruff format --check, shellcheck (when on PATH), actionlint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@if command -v shellcheck >/dev/null; then shellcheck .ci/run tools/up; \
	else echo "note: shellcheck is not on PATH: run: scripts, .ci/run and tools/up are not shell-checked"; fi
	$(VENV)/bin/actionlint $(WORKFLOWS)

pytest: $(VENV)/.installed  ## the tests alone
	$(PY) -m pytest

# The whole platform offline: no CLI, network or credentials. `make plan OUT=plan-out` also writes files.
plan: $(VENV)/.installed  ## the platform offline (STACK=pi5; OUT=plan-out also writes files)
	$(PY) -m spitikos plan --stack $(STACK) $(if $(OUT),--out $(OUT))

# Deploy a stack (`make up STACK=lab`) with the program's dependencies from the same .venv the
# tests use. The stack is created only on the local file backend, never on a shared one.
up: $(VENV)/.installed  ## deploy STACK (default pi5) with the pinned Pulumi CLI
	STACK='$(STACK)' PULUMI_VERSION='$(PULUMI_VERSION)' PULUMI_ROOT='$(PULUMI_ROOT)' \
	PULUMI_INSTALL='$(PULUMI_INSTALL)' tools/up

# Install the pinned Pulumi CLI into .pulumi-cli/ when none is found, and print the line that
# puts it on PATH: the README's and the runbook's `pulumi` commands need it there.
cli:  ## install the pinned Pulumi CLI (when missing) and print the `export PATH=...` line
	@STACK='$(STACK)' PULUMI_VERSION='$(PULUMI_VERSION)' PULUMI_ROOT='$(PULUMI_ROOT)' \
	PULUMI_INSTALL='$(PULUMI_INSTALL)' tools/up cli

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

.PHONY: snapshot mutants  # `mutants/` is also the directory mutmut works in

# The reviewed snapshot of the platform (tests/snapshots/pi5/): rewrite it after an intended change,
# then review its diff. The tests fail on any difference.
snapshot: $(VENV)/.installed  ## rewrite tests/snapshots/pi5/ after an intended change
	@$(PY) -c 'from spitikos.plan import rewrite_snapshot; print(rewrite_snapshot("pi5"))'

# Mutation testing of components/ (see [tool.mutmut] in pyproject.toml); long, so never part of `make test` or CI.
mutants: $(VENV)/.installed  ## mutation testing (long: never in make test or CI)
	$(VENV)/bin/pip install --quiet -r requirements-mutants.txt
	rm -rf mutants
	# mutmut exits non-zero only when it could not run (stats, clean tests); survivors are listed below.
	$(VENV)/bin/mutmut run --max-children 2
	$(VENV)/bin/mutmut results --all false | tee mutants/results.txt
