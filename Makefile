# Raven developer commands. Every target creates .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PROTO_SRC := proto/raven/v1/market_data.proto
PROTO_OUT := src/raven/v1

.PHONY: demo run sim test lint typecheck proto proto-check bench bench-quick build clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Raven needs Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Runtime install, redone when pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(PY) -m pip install --quiet -e .
	@touch $@

# Development install (tests, linters, code generators).
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed-run

## demo: simulator + server + a live terminal client for ~20 s (Ctrl-C stops all three)
demo: $(VENV)/.installed-run
	$(BIN)/raven demo --duration 20

## run: the server with config/development.toml (start `make sim` first)
run: $(VENV)/.installed-run
	scripts/run-env.sh

## sim: the Binance USD-M simulator on 127.0.0.1:8800
sim: $(VENV)/.installed-run
	$(BIN)/raven sim

## test: lint, type-check, generated-code check and the whole test suite
test: $(VENV)/.installed-dev lint proto-check
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests python_client
	$(BIN)/ruff format --check src tests python_client
	$(BIN)/mypy
	$(BIN)/mypy --strict python_client/*.py

## proto: regenerate src/raven/v1 from proto/ (generated code is committed)
proto: $(VENV)/.installed-dev
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) -m grpc_tools.protoc -Iproto --python_out=src --grpc_python_out=src \
		--mypy_out=src --mypy_grpc_out=src $(PROTO_SRC)

## proto-check: fail when the committed generated code is not what proto/ gives
proto-check: $(VENV)/.installed-dev
	@rm -rf .proto-check && mkdir -p .proto-check
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) -m grpc_tools.protoc -Iproto --python_out=.proto-check --grpc_python_out=.proto-check \
		--mypy_out=.proto-check --mypy_grpc_out=.proto-check $(PROTO_SRC)
	@for f in .proto-check/raven/v1/*; do \
		cmp -s $$f $(PROTO_OUT)/$$(basename $$f) || { echo "error: $(PROTO_OUT)/$$(basename $$f) is out of date; run 'make proto'"; rm -rf .proto-check; exit 1; }; \
	done
	@rm -rf .proto-check
	@echo "generated protobuf code is current"

## build: the wheel and the sdist in dist/ (DIST=dir to put them elsewhere)
DIST ?= dist
## bench: every benchmark scenario, full length; appends to BENCHMARKS.md (see README)
bench: $(VENV)/.installed-dev
	$(BIN)/raven bench

## bench-quick: every scenario, a few seconds each
bench-quick: $(VENV)/.installed-dev
	$(BIN)/raven bench --quick

build: $(VENV)/.installed-dev
	@rm -f $(DIST)/raven_md-*
	$(PY) -m build --no-isolation --outdir $(DIST) . >$(VENV)/build.log 2>&1 || { cat $(VENV)/build.log; exit 1; }
	@rm -rf build
	@ls $(DIST)/raven_md-*

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache .hypothesis
