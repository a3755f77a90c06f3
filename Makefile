# RRIEF developer entry points. `make demo` runs the main job, `make test` the whole test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DBT_VENV := .venv-dbt
DBT_STAMP := $(DBT_VENV)/.installed

.PHONY: demo test lint format bench fuzz clean dbt-manifest

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[llm,pipeline,annotate,dev]'
	touch $(STAMP)

$(DBT_STAMP): dbt/requirements.txt  ## dbt in its own venv (its pins clash with Airflow's)
	$(PYTHON) -m venv $(DBT_VENV)
	$(DBT_VENV)/bin/pip install -q --disable-pip-version-check -r dbt/requirements.txt
	touch $(DBT_STAMP)

DBT_MANIFEST := dbt/target/manifest.json
DBT_SOURCES := $(shell find dbt/models dbt/macros -name '*.sql' -o -name '*.yml') dbt/dbt_project.yml

# The manifest cosmos renders rrief_daily's dbt task group from (LoadMode.DBT_MANIFEST): built
# here, at install time, so the dag-processor never runs dbt. `dbt parse` needs no database.
$(DBT_MANIFEST): $(DBT_STAMP) $(STAMP) $(DBT_SOURCES)
	$(BIN)/python -m extractors.pipeline.dbt --check
	cd dbt && ../$(DBT_VENV)/bin/dbt parse --quiet --profiles-dir . --target-path target

dbt-manifest: $(DBT_MANIFEST)  ## the dbt manifest the DAG's cosmos task group is rendered from

demo: $(STAMP) $(DBT_STAMP) $(DBT_MANIFEST)  ## seed a demo RIS, run rrief_daily over 5 days on an embedded PostgreSQL, build the marts
	$(BIN)/rrief demo

test: $(STAMP) $(DBT_STAMP) $(DBT_MANIFEST)  ## lint, format check, then every test (slow ones included) against a real PostgreSQL
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	eval "$$(bash .ci/start-postgres.sh)" && $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## throughput benchmarks (print reports/s and ratios)
	$(BIN)/python bench/rules_throughput.py
	$(BIN)/python bench/evaluate_bootstrap.py
	$(BIN)/python bench/pipeline.py

fuzz: $(STAMP)  ## the fuzz targets of tests/test_fuzz.py with many more examples and fresh seeds (minutes)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_fuzz.py

clean:
	rm -rf $(VENV) $(DBT_VENV) .rrief .pytest_cache .ruff_cache .hypothesis dbt/target dbt/logs
