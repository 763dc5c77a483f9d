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

.PHONY: install demo test dev bench bench-facts bench-questdb clean

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

dev: $(STAMP)
	mkdir -p $(DAGSTER_HOME_DIR)
	@# `dg dev` loads the code location `mkt_pipeline` named in pyproject.toml ([tool.dg], [tool.dagster]),
	@# the name workspace.yaml and the deployment use too
	cd $(CURDIR) && VIRTUAL_ENV=$(abspath $(VENV)) DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(VENV)/bin/dg dev --port $(PORT) --host $(HOST)

bench: $(STAMP)
	$(PY) -m bench.bench_fx
	$(PY) -m bench.bench_equities
	$(PY) bench/bench_ilp.py

# the SPEC §11 stylised facts of a generated day of each market (light demo rates, 3-level books)
# against a running QuestDB (QUESTDB_HOST / QUESTDB_*_PORT): ingestion vs its ceiling, Dagster vs the CLI
bench-questdb: $(STAMP)
	$(PY) bench/bench_questdb.py
	$(PY) bench/bench_dagster.py

bench-facts: $(STAMP)
	$(PY) -m bench.bench_facts --pictures docs/facts

clean:
	rm -rf $(VENV) data .pytest_cache
