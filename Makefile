# Holdline developer targets; the README names them.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

.PHONY: install demo test prometheus lint typecheck unit infra-up infra-down infra-status clean bench chaos

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

## demo: Kafka + the four services on SQLite, a demo data set, a report; stops everything after
demo: install
	$(BIN)/holdline demo

## test: starts Kafka and PostgreSQL, then lint, types and the whole suite (nothing skipped)
test: install prometheus
	$(BIN)/holdline infra up
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

## bench: starts Kafka and PostgreSQL, runs the benchmarks, prints and records their tables
bench: install
	$(BIN)/holdline infra up
	$(BIN)/python bench/run.py

## prometheus and promtool from Debian's packages, for the operations tests
prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus)

unit: install
	$(BIN)/pytest tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

infra-up: install
	$(BIN)/holdline infra up

infra-down: install
	$(BIN)/holdline infra down

infra-status: install
	$(BIN)/holdline infra status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## chaos: 100,000 signals through the platform on a private Kafka and PostgreSQL while the broker,
## each service, PostgreSQL and the webhook receiver are crashed and restarted; prints the checks
chaos: install
	$(BIN)/python bench/chaos.py
