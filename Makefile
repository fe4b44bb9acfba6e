# The README's commands. Every target installs what it needs into .venv first.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
ENV ?= dev
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

OPENAPI := layers/core/python/sightline/api/openapi.json

.PHONY: install system-deps run test lint bench openapi clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local,dev]'
	touch $@

system-deps:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null)

install: system-deps $(VENV)/.installed

run: install
	$(VENV)/bin/sightline demo

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check . || true

bench: install
	$(VENV)/bin/sightline --home .sightline-bench bench

openapi: install
	$(VENV)/bin/sightline openapi --write $(OPENAPI)

clean:
	rm -rf .sightline .sightline-bench .pytest_cache
