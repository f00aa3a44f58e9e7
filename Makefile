# `make test` is the one test command: README, developers and .ci/run all use it (lint, types, every test).
# `make test-fast` is the quick loop while editing: the tests that need no server and are not slow
# (tests/conftest.py marks a test `server` when it uses the real Redis or Mosquitto).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test test-fast test-deploy lint types pytest demo clean

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

# Two pytest-xdist workers: most tests wait on processes and brokers, not on the CPU (tests/scheduling.py
# keeps the scenarios under load in one worker, one at a time).
pytest: install
	$(BIN)/pytest -n 2 --dist loadgroup

test: lint types pytest

test-fast: install
	$(BIN)/pytest -q -n 2 -m "not server and not slow"

# The image built and docker-compose.yml run for real (docs/deployment.md, "How these files are checked"):
# scripts/docker-host.sh installs and starts Docker where needed (as root), then tests/deploy/test_compose_stack.py.
test-deploy: install
	scripts/docker-host.sh
	$(BIN)/pytest -m docker -rP tests/deploy/test_compose_stack.py

demo: install
	BIN=$(BIN) scripts/demo.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
