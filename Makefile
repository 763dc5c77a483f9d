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
	MKT_OFFLINE=$${MKT_OFFLINE:-0} $(VENV)/bin/mkt-pipeline fx --mode faster-than-life --sink parquet --parquet_dir $(DEMO_DIR) \
		--start_ts $(DEMO_HOUR) --end_ts $(DEMO_END) --total_market_data_events 100_000_000 --overwrite true $(DEMO_FX_FLAGS)

test: $(STAMP)
	$(PY) -m pytest -q

dev: $(STAMP)
	mkdir -p $(DAGSTER_HOME_DIR)
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(VENV)/bin/dagster dev -m mkt_pipeline.definitions

bench: $(STAMP)
	$(PY) -m bench.bench_fx

clean:
	rm -rf $(VENV) data .pytest_cache
