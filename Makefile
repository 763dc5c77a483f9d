# Quick start: `make demo` (an FX hour and an equities hour through Dagster into ./data, no server
# needed) and `make test`; `make dev` opens the Dagster UI.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DAGSTER_HOME_DIR := $(abspath dagster_home)
DEMO_DIR ?= ./data
# where `make dev` serves the UI: `make dev PORT=3001 HOST=0.0.0.0`
PORT ?= 3000
HOST ?= 127.0.0.1
DEMO_FX_HOUR ?= 2025-11-11T03:00:00Z
# 10:00 in New York, so the equities session is trading
DEMO_EQUITIES_HOUR ?= 2025-11-11T15:00:00Z

.PHONY: install demo test test-ilp lint docs docs-serve dev bench bench-facts bench-questdb clean reference

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	mkdir -p $(DAGSTER_HOME_DIR)
	@# recorded in the instance `make dev` opens, so the demo's runs, partitions and checks show there
	@# light profile through the MKT_<MARKET>_<FLAG> defaults: seed local-development rates, 10 levels
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) MKT_SINK=parquet MKT_PARQUET_DIR=$(DEMO_DIR) MKT_OFFLINE=$${MKT_OFFLINE:-0} \
	MKT_FX_MARKET_DATA_MIN_EPS=110 MKT_FX_MARKET_DATA_MAX_EPS=150 MKT_FX_CORE_MIN_EPS=70 MKT_FX_CORE_MAX_EPS=100 \
	MKT_FX_ORDERS_MIN_PER_SEC=5 MKT_FX_ORDERS_MAX_PER_SEC=30 MKT_FX_MIN_LEVELS=10 MKT_FX_MAX_LEVELS=10 \
	MKT_EQUITIES_MARKET_DATA_MIN_EPS=800 MKT_EQUITIES_MARKET_DATA_MAX_EPS=2000 MKT_EQUITIES_TRADES_MIN_EPS=300 \
	MKT_EQUITIES_TRADES_MAX_EPS=800 MKT_EQUITIES_MIN_LEVELS=10 MKT_EQUITIES_MAX_LEVELS=10 \
		$(PY) -W ignore -m mkt_pipeline.demo --fx_hour $(DEMO_FX_HOUR) --equities_hour $(DEMO_EQUITIES_HOUR)

test: $(STAMP)
	$(PY) -m pytest -q

# ruff's rules and line length are in pyproject.toml ([tool.ruff])
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# the documentation site (mkdocs.yml, docs/) into ./site; warnings (broken links, pages left out) fail, and so
# does a generated reference page (or the entrypoint's flag lists) that differs from the settings model:
# `make reference` regenerates them
docs: $(STAMP)
	$(PY) -m mkt_pipeline.settings_docs --check docs/reference docker/entrypoint.sh
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve
# the ILP paths against an older, ILP-only QuestDB (.ci/run points QDB_TEST_HOST at a 9.3 server):
# sink parity, resume, authentication, and what --protocol ws/auto do on a server without QWP
# (kept to these so CI stays within its time budget)
ILP_TESTS := mkt_pipeline_tests/sinks/test_questdb_integration.py mkt_pipeline_tests/sinks/test_questdb_auth.py \
	mkt_pipeline_tests/run/test_resume_questdb.py \
	"mkt_pipeline_tests/sinks/test_questdb_qwp.py::test_auto_picks_qwp_when_offered_else_ilp_and_says_so" \
	"mkt_pipeline_tests/sinks/test_questdb_qwp.py::test_qwp_on_a_server_without_it_is_one_line"
test-ilp: $(STAMP)
	$(PY) -m pytest -q $(ILP_TESTS)

dev: $(STAMP)
	mkdir -p $(DAGSTER_HOME_DIR)
	@# `dg dev` loads the code location `mkt_pipeline` named in pyproject.toml ([tool.dg], [tool.dagster]),
	@# the name workspace.yaml and the deployment use too
	cd $(CURDIR) && VIRTUAL_ENV=$(abspath $(VENV)) DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(VENV)/bin/dg dev --port $(PORT) --host $(HOST)

bench: $(STAMP)
	$(PY) -m bench.bench_fx
	$(PY) -m bench.bench_equities
	$(PY) bench/bench_ilp.py

# the stylised facts (docs/data-model.md#realism-bands) of a generated day of each market
# (light demo rates, 3-level books)
# against a running QuestDB (QUESTDB_HOST / QUESTDB_*_PORT): ingestion vs its ceiling, Dagster vs the CLI
bench-questdb: $(STAMP)
	$(PY) bench/bench_questdb.py
	$(PY) bench/bench_dagster.py

bench-facts: $(STAMP)
	$(PY) -m bench.bench_facts --pictures docs/facts

clean:
	rm -rf $(VENV) data site .pytest_cache .ruff_cache

# The CLI and configuration reference (docs/reference) and the container entrypoint's flag lists,
# generated from the settings model (mkt_pipeline/settings.py); `make docs` fails when they are stale.
reference: $(STAMP)
	$(PY) -m mkt_pipeline.settings_docs docs/reference docker/entrypoint.sh
