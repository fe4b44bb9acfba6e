# The README's commands. Every target installs what it needs into .venv first.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
ENV ?= dev
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

OPENAPI := layers/core/python/sightline/api/openapi.json

CDK_DIR := cdk
CDK := $(CDK_DIR)/node_modules/.bin/cdk
CDK_RUN := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" CDK_DISABLE_CLI_TELEMETRY=true $(CDK)
CDK_ARGS := -c env=$(ENV) --no-notices --no-version-reporting
CDK_STACKS := 'Sightline-$(ENV)/*'

.PHONY: install system-deps run test lint bench openapi clean layers synth deploy destroy

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local,dev,cdk]'
	touch $@

system-deps:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null)
	@# Debian's Chromium for the browser tests (tests/browser drive it with Playwright).
	@command -v chromium >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

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

# The CDK CLI, pinned in cdk/package.json + package-lock.json.
$(CDK): $(CDK_DIR)/package.json $(CDK_DIR)/package-lock.json
	cd $(CDK_DIR) && npm ci --no-audit --no-fund
	touch $@

# Lambda layers for arm64 / CPython 3.12 from the package index (no Docker); rebuilt only
# when cdk/layers/*.txt change. FFPROBE=/path/to/static-arm64-ffprobe adds ffprobe.
layers: install
	$(PY) cdk/build_layers.py $(if $(FFPROBE),--ffprobe $(FFPROBE))

synth: install layers $(CDK)
	AWS_EC2_METADATA_DISABLED=true $(CDK_RUN) synth $(CDK_ARGS) --quiet $(CDK_STACKS)

deploy: install layers $(CDK)
	$(CDK_RUN) deploy $(CDK_ARGS) --require-approval broadening $(CDK_STACKS)

destroy: install layers $(CDK)
	$(CDK_RUN) destroy $(CDK_ARGS) $(CDK_STACKS)

clean:
	rm -rf .sightline .sightline-bench .pytest_cache cdk.out build
