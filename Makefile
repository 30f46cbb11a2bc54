# The kit's two commands. Each one does all of its own set-up.
#   make grade   set up, then run the exercises and show the score table
#   make test    set up, lint (ruff, mypy), then run the whole test suite (what CI runs)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: grade test setup memcached lint bench peers bench-peers clean

grade: setup
	@# Failing exercises are the normal state of a kit in progress: exit 0 when a
	@# grade was produced (pytest exit 1), but not when pytest itself broke.
	@$(BIN)/pytest exercises/ $(ARGS); status=$$?; [ $$status -eq 0 ] || [ $$status -eq 1 ]

test: setup lint
	@sh scripts/ensure-test-tools
	@# Three workers on two cores, work stealing: most of the suite's time is spent
	@# waiting (broken implementations that hang, servers, child processes), not
	@# computing; the kit check runs many short pytest subprocesses. 12:07 -> 8:29.
	$(BIN)/pytest tests/ -n 3 --dist worksteal --durations=15 $(ARGS)

setup: $(STAMP) memcached

$(STAMP): setup.cfg pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

memcached:
	@sh scripts/ensure-memcached

lint: setup
	$(BIN)/ruff check pytest_concurrency tests exercises solutions benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/bench_scheduler.py
	$(BIN)/python benchmarks/bench_deadlock.py
	$(BIN)/python benchmarks/bench_linearizability.py

# The peers (interleave-test, frontrun) need Python 3.12+ and 3.13: a venv of their own.
PEERS_PYTHON ?= $(firstword $(wildcard /root/.pyenv/versions/3.13.*/bin/python) $(shell command -v python3.13))
PEERS_VENV   ?= .venv-peers

peers: $(PEERS_VENV)/.installed

$(PEERS_VENV)/.installed: setup.cfg pyproject.toml
	@[ -n "$(PEERS_PYTHON)" ] || { echo "make peers: needs Python 3.13 (python3.13 on PATH, or PEERS_PYTHON=/path/to/python3.13)"; exit 1; }
	@[ -x $(PEERS_VENV)/bin/python ] || $(PEERS_PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet -e '.[test,peers]'
	@touch $@

bench-peers: peers
	$(PEERS_VENV)/bin/python benchmarks/bench_scheduler.py --peers $(ARGS)

clean:
	rm -rf $(VENV) $(PEERS_VENV) build *.egg-info .pytest_cache .hypothesis
