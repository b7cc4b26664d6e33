# mockbankr: every target bootstraps .venv itself through `install`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PEER   := .peer

.PHONY: install run test lint typecheck bench peer sysdeps clean
# COMMAND=DEBIAN_PACKAGE pairs: the system programs the tests use (see scripts/sysdeps)
SYSDEPS := node=nodejs npm=npm redis-server=redis-server chromium=chromium

install: $(STAMP)

$(STAMP): pyproject.toml client/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./client -e '.[dev]'
	touch $(STAMP)

## make run ARGS="--speed 20 --seed 1": the simulator on http://127.0.0.1:8402
run: install
	$(BIN)/mockbankr serve $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

## the whole suite, including the official Node CLI/SDK peers (see `peer`)
test: sysdeps lint peer
	MOCKBANKR_REQUIRE_PEERS=1 $(BIN)/pytest

## the system programs the tests need (apt-get where allowed, else one line naming them)
sysdeps:
	scripts/sysdeps $(SYSDEPS)

## the official @bankr/cli and @bankr/sdk from npm, into the ignored .peer/
peer: $(PEER)/.installed

$(PEER)/.installed: peer/package.json peer/package-lock.json
	mkdir -p $(PEER)
	cp peer/package.json peer/package-lock.json $(PEER)/
	cd $(PEER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## performance figures, each a ratio against a baseline measured in the same run (needs wrk)
bench: install
	command -v wrk >/dev/null 2>&1 && command -v valgrind >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq wrk valgrind; }
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) $(PEER) .mypy_cache .ruff_cache .hypothesis
