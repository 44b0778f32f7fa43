# Everything installs itself: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Production's Synapse (with the pins of its day: local_run/synapse-1.105.1.constraints) and the
# current release; local_run/synapse_server.py names the same two.
SYNAPSE_PRODUCTION := 1.105.1
SYNAPSE_VERSIONS := $(SYNAPSE_PRODUCTION) 1.163.2
CHECKOV_VERSION := 3.3.30
# uv makes the environments: it installs from its cache by links, in parallel, where pip unpacks
# every wheel again (the suite's time includes the install: docs/benchmarks.md).
UV_VERSION := 0.13.9
UV := .uv/bin/uv
# The interpreter named by its path: uv reads a bare `python3` as a version request, which it may
# meet with a Python of its own.
UV_VENV := $(UV) venv -q --clear --no-python-downloads --python "$$(command -v $(PYTHON))"
UV_INSTALL := $(UV) pip install -q
# Python caches what it compiles, as it does by default (some machines turn that off): each of the
# suite's processes (workers, synths, servers) would compile every module it imports again.
unexport PYTHONDONTWRITEBYTECODE
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := true

.PHONY: install lint unit test proof negative-controls demo bench synth docs asl down clean

install:
	@$(MAKE) --no-print-directory -j4 $(VENV)/.stamp $(SYNAPSE_VERSIONS:%=.synapse/%/.stamp) .checkov-venv/.stamp-$(CHECKOV_VERSION) \
		node_modules/.stamp .wheels/.stamp .lambda-venv/.stamp

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install -q 'uv==$(UV_VERSION)'

# The project's environment; with pip (--seed), which bundles the Lambda asset at synth
# (stacks/bundling.py).
# What the app imports (aws-cdk-lib's modules are large) is compiled here, once, rather than by
# the suite's synths at the same time. The rest of this and the other environments is compiled
# by the first process that imports it: compiling whole environments at install cost more CPU
# than it saved. The Lambda runtime's is the exception (below).
$(VENV)/.stamp: pyproject.toml | $(UV)
	$(UV_VENV) --seed $(VENV)
	$(UV_INSTALL) --python $(PY) -e '.[test]'
	$(PY) -c 'import app'
	touch $@

# Synapse lives in environments of its own, one per release: its pins are not the project's.
.synapse/%/.stamp: | $(UV)
	$(UV_VENV) .synapse/$*
	$(UV_INSTALL) --python .synapse/$*/bin/python 'matrix-synapse[jwt]==$*' \
		$(if $(wildcard local_run/synapse-$*.constraints),-c local_run/synapse-$*.constraints)
	touch $@

# checkov, a second rule set on the synthesized template (tests/infra); its pins are not ours either.
.checkov-venv/.stamp-$(CHECKOV_VERSION): | $(UV)  # a new version, a new stamp: installed again
	$(UV_VENV) .checkov-venv
	$(UV_INSTALL) --python .checkov-venv/bin/python 'checkov==$(CHECKOV_VERSION)'
	touch $@

# The local Lambda runtime's environment (local_run/lambda_runtime.py): the asset's packages and
# what Lambda's Python runtime provides, nothing else, as on AWS: a dependency the asset lacks
# fails here too, and a cold start imports what it would import there, compiled, as the asset
# pip installs is. Its pip (--seed) downloads the asset's wheels (below).
.lambda-venv/.stamp: pyproject.toml | $(UV)
	$(UV_VENV) --seed .lambda-venv
	$(UV_INSTALL) --compile-bytecode --python .lambda-venv/bin/python $$($(PYTHON) -m stacks.asset_pins --local)
	touch $@

# The CDK CLI and asl-validator.
node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

# The Lambda asset's wheels for its platform, so that `cdk synth` needs no network; its
# requirements are pyproject.toml's pins of what it ships (stacks/asset_pins.py, standard
# library only: neither this nor the rule above waits for the project's environment).
.wheels/.stamp: pyproject.toml .lambda-venv/.stamp
	rm -rf .wheels
	.lambda-venv/bin/pip download -q -d .wheels $$($(PYTHON) -m stacks.asset_pins) \
		--platform manylinux2014_aarch64 --python-version 3.14 --implementation cp --only-binary=:all:
	touch $@

# ruff (pyflakes, pycodestyle, import order, bugbear, pyupgrade) on the tree; mypy, strict, on
# the Lambda package and the fakes it holds to the ports; lint-imports, the layers the folders
# show. Their settings are in pyproject.toml.
lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# The fast tier: every step and trigger on in-memory fakes, offline (tests/unit/conftest.py
# refuses sockets), no Synapse, no stack; fuzzing at 50 cases per handler (make test: 200).
unit: $(VENV)/.stamp
	FUZZ_EXAMPLES=50 $(PY) -m pytest -q -p no:cacheprovider tests/unit

# Lint, then the whole suite (unit, integration, workflow, infra) on four workers on two
# cores: much of it waits (Synapse, Step Functions' retries).
test: install lint
	$(PY) -m pytest -n 4 --ignore=tests/proof

# The reliability suite: every fault kind at every step, through a fault proxy.
proof: install
	$(PY) -m pytest tests/proof
	FUZZ_EXAMPLES=2000 $(PY) -m pytest -n 4 tests/unit/test_fuzz.py

# Each protection removed in turn: a test must fail each time (the longest target).
negative-controls: install
	$(PY) tests/attacks/mutations.py

# The demo installs what it runs and nothing more: the project, the Synapse it starts
# (production's, or CHAT_PROVISIONING_SYNAPSE's) and the functions' runtime (no checkov, no CDK
# CLI: it synthesizes through app.py).
demo:
	@$(MAKE) --no-print-directory -j4 $(VENV)/.stamp .lambda-venv/.stamp \
		.synapse/$(or $(CHAT_PROVISIONING_SYNAPSE),$(SYNAPSE_PRODUCTION))/.stamp
	$(PY) -m local_run.demo

# What a sign-up costs, as counts and ratios measured in one run: a table and bench/results.json.
# The sweep at scale (bench/sweep.py --users N: it seeds N users first) and the suite's time
# (bench/suite.py: make test in fresh clones) are separate, and long.
bench: install
	$(PY) bench/signup.py

synth: install
	node_modules/.bin/cdk synth --quiet

# Writes the pages' sections drawn from what the stack deploys (stacks/docs.py): in
# docs/how-it-works.md the workflows' pictures (from statemachines/), the retry policy's legend
# and the steps' table (from their docstrings); in the README the least-privilege table.
docs: $(VENV)/.stamp
	$(PY) -m stacks.docs

# Writes the one retry policy (stacks/retries.py, from domain/errors.py) into every Lambda
# Task's Retry, then the pages' sections that show it.
asl: $(VENV)/.stamp
	$(PY) -m stacks.retries
	$(PY) -m stacks.docs

down:
	$(VENV)/bin/chat-provisioning local down

clean:
	rm -rf .uv $(VENV) .synapse .checkov-venv .lambda-venv node_modules .wheels cdk.out .local
