# RRIEF developer entry points. `make demo` runs the main job, `make test` the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[llm,pipeline,dev]'
	touch $(STAMP)

demo: $(STAMP)  ## extract + evaluate the bundled sample reports for all three schemas
	$(BIN)/rrief demo --output demo-out

test: $(STAMP)  ## lint, format check, then every test (slow ones included) against a real PostgreSQL
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

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache
