# The two commands of the README: `make demo` and `make test`. Everything they need is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.8
DEMO_DIR ?= demo
DEMO_CUSTOMERS ?= 50000

.PHONY: setup system demo test lint bench clean

system:
	@bash scripts/setup-system.sh

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	@$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $@

setup: system $(STAMP)

demo: setup
	@bash scripts/demo.sh "$(DEMO_DIR)" "$(DEMO_CUSTOMERS)"

test: setup
	@$(BIN)/ruff check gridtopo tests benchmarks migrations
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	@$(BIN)/ruff check gridtopo tests benchmarks migrations
	@$(BIN)/mypy gridtopo

bench: setup
	@for b in benchmarks/*.py; do $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
