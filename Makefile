# Quick start: `make demo` (one hour of synthetic data into ./data, no server needed) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DAGSTER_HOME_DIR := $(abspath dagster_home)
DEMO_DIR ?= ./data
DEMO_HOUR ?= 2025-11-11T03:00:00Z
DEMO_END ?= 2025-11-11T04:00:00Z
# light profile: the seed's local-development rates and 10 book levels
DEMO_FX_FLAGS := --market_data_min_eps 110 --market_data_max_eps 150 --core_min_eps 70 --core_max_eps 100 \
	--orders_min_per_sec 5 --orders_max_per_sec 30 --min_levels 10 --max_levels 10

.PHONY: install demo test dev bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@# light profile through the MKT_<MARKET>_<FLAG> defaults: seed local-development rates, 10 levels
	MKT_SINK=parquet MKT_PARQUET_DIR=$(DEMO_DIR) MKT_OFFLINE=$${MKT_OFFLINE:-0} \
	MKT_FX_MARKET_DATA_MIN_EPS=110 MKT_FX_MARKET_DATA_MAX_EPS=150 MKT_FX_CORE_MIN_EPS=70 MKT_FX_CORE_MAX_EPS=100 \
	MKT_FX_ORDERS_MIN_PER_SEC=5 MKT_FX_ORDERS_MAX_PER_SEC=30 MKT_FX_MIN_LEVELS=10 MKT_FX_MAX_LEVELS=10 \
	MKT_EQUITIES_MARKET_DATA_MIN_EPS=800 MKT_EQUITIES_MARKET_DATA_MAX_EPS=2000 MKT_EQUITIES_TRADES_MIN_EPS=300 \
	MKT_EQUITIES_TRADES_MAX_EPS=800 MKT_EQUITIES_MIN_LEVELS=10 MKT_EQUITIES_MAX_LEVELS=10 \
		$(PY) -W ignore -m mkt_pipeline.demo --fx_hour $(DEMO_HOUR) --equities_hour 2025-11-11T15:00:00Z

test: $(STAMP)
	$(PY) -m pytest -q

dev: $(STAMP)
	mkdir -p $(DAGSTER_HOME_DIR)
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(VENV)/bin/dagster dev -m mkt_pipeline.definitions

bench: $(STAMP)
	$(PY) -m bench.bench_fx

clean:
	rm -rf $(VENV) data .pytest_cache
