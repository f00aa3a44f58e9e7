# `make test` is the one test command: README, developers and .ci/run all use it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test lint types pytest demo clean

$(BIN)/agent2389: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

install: $(BIN)/agent2389

lint: install
	$(BIN)/ruff check .

types: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint types pytest

demo: install
	BIN=$(BIN) scripts/demo.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
