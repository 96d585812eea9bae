# One entry point for people and CI. `make test` sets everything up from scratch.
VENV ?= .venv
PY := $(VENV)/bin/python
# Every workflow actionlint checks: this repository's own and the one seeded into `spitikos`.
WORKFLOWS := .github/workflows/*.yaml components/seed/release.yaml

.PHONY: test lint pytest up plan

test: lint pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@command -v shellcheck >/dev/null || echo "note: shellcheck is not on PATH, so actionlint does not check run: scripts"
	$(VENV)/bin/actionlint $(WORKFLOWS)

pytest: $(VENV)/.installed
	$(PY) -m pytest

# The whole platform offline: no CLI, network or credentials. `make plan OUT=plan-out` also writes files.
plan: $(VENV)/.installed
	$(PY) -m spitikos plan $(if $(STACK),--stack $(STACK)) $(if $(OUT),--out $(OUT))

# The main job: needs the Pulumi CLI and the secrets set (see README).
up:
	pulumi stack select --create pi5
	pulumi up

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@
