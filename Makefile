# Everything a newcomer needs: `make demo` and `make test` set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.data/dagster_home

.PHONY: install demo dev test lint validate bench clean

$(STAMP): pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install --quiet -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import spotify_platform, dagster, pandera, pyarrow"
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\n' > $@

demo: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/spotify-platform demo

dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	SIMULATOR_ACCOUNTS=$${SIMULATOR_ACCOUNTS:-2000} $(BIN)/dagster dev

validate: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster definitions validate -m spotify_platform.definitions

lint: $(STAMP)
	$(BIN)/ruff check spotify_platform spotify_platform_tests

test: $(STAMP) lint validate
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m spotify_platform.bench

clean:
	rm -rf .data .bench
