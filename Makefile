# Everything a newcomer needs: `make demo` and `make test` set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.data/dagster_home

.PHONY: install instance demo dev test lint validate bench migration clean

$(STAMP): pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -m pip install --quiet -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import spotify_platform, dagster, pandera, pyarrow"
	touch $(STAMP)

install: $(STAMP)

# The local instance's dagster.yaml: Dagster's SQLite storage, asset events written in batches.
instance: $(STAMP)
	$(BIN)/python -m spotify_platform.defs.event_storage $(DAGSTER_HOME)

demo: instance
	$(BIN)/spotify-platform demo

dev: instance
	SIMULATOR_ACCOUNTS=$${SIMULATOR_ACCOUNTS:-2000} $(BIN)/dagster dev

validate: instance
	$(BIN)/dagster definitions validate -m spotify_platform.definitions

lint: $(STAMP)
	$(BIN)/ruff check spotify_platform spotify_platform_tests tools

test: $(STAMP) lint validate
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m tools.bench

# The next warehouse schema revision, generated from the contracts: make migration MESSAGE="..."
migration: $(STAMP)
	$(BIN)/python -m spotify_platform.core.warehouse.migrations "$(MESSAGE)"

clean:
	rm -rf .data .bench
