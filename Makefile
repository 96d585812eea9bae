# One entry point for people and CI. `make test` sets everything up from scratch.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: test lint pytest up

test: lint pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

pytest: $(VENV)/.installed
	$(PY) -m pytest

# The main job: needs the Pulumi CLI and the secrets set (see README).
up:
	pulumi stack select --create pi5
	pulumi up

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@
