# The two commands of the README: `make demo` and `make test`. Everything they need is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.8
DEMO_DIR ?= demo
DEMO_CUSTOMERS ?= 50000
# both cores: the suite (tests, doctests, both stores) is written to run in parallel
PYTEST_ARGS ?= -n 2

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
	@$(BIN)/lint-imports --no-cache
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	@$(BIN)/ruff check gridtopo tests benchmarks migrations
	@$(BIN)/lint-imports --no-cache
	@$(BIN)/mypy gridtopo

BENCH_DIR ?= /tmp/gridtopo-bench
BENCH_SQLITE = sqlite:///$(BENCH_DIR)/gridtopo.db
BENCH_PG = postgresql://postgres@127.0.0.1:5432/gridtopo_full

# Guangdong size; the ingest benchmark keeps its models in BENCH_DIR for the others
bench: setup
	@$(BIN)/python benchmarks/generate.py
	@$(BIN)/python benchmarks/ingest.py --workdir $(BENCH_DIR) --keep $(BENCH_DIR)
	@$(BIN)/python benchmarks/outage.py --db $(BENCH_SQLITE) --pg $(BENCH_PG)
	@$(BIN)/python benchmarks/audit.py --db $(BENCH_SQLITE) --truth $(BENCH_DIR)/sources-14297503-1/truth
	@$(BIN)/python benchmarks/audit.py --db $(BENCH_PG) --truth $(BENCH_DIR)/sources-14297503-1/truth
	@$(BIN)/python benchmarks/export.py --db $(BENCH_SQLITE) --db $(BENCH_PG) --customers

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
