# The two commands of the README: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The versions the suite last passed with (`make constraints` writes it); CONSTRAINTS= installs without.
CONSTRAINTS ?= constraints.txt

.PHONY: demo test lint typecheck unit unit-fast proofs bench constraints clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "promoter needs Python 3.11 or newer: set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev,sandbox]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/promoter demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# Everything that needs no Prefect server and no end-to-end stack: the quick loop while editing.
unit-fast: $(STAMP)
	$(BIN)/pytest -m "not server and not slow"

# Short versions of the proof benchmarks (push races, forge faults, SIGKILL chaos, scale-out on
# PostgreSQL and SQLite, a release burst); each exits non-zero when a guarantee breaks. `make bench` runs the full ones.
proofs: $(STAMP)
	$(BIN)/python bench/push_race.py --apps 5
	$(BIN)/python bench/faults.py --apps 3
	$(BIN)/python bench/chaos.py --kills 2
	$(BIN)/python bench/scale.py --apps 4 --allow-no-postgres
	$(BIN)/python bench/burst.py --apps 10 --flux-delay 5 --window 2 --watch-seconds 2 --allow-no-postgres \
		--guarantees-only

test: lint typecheck unit proofs

bench: $(STAMP)
	$(BIN)/python bench/bump_scale.py
	$(BIN)/python bench/sandbox_speed.py
	$(BIN)/python bench/api_economy.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/concurrency.py
	$(BIN)/python bench/push_race.py
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/chaos.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/burst.py --sizes 50,200

constraints: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable > constraints.txt

clean:
	rm -rf $(VENV) .promoter .pytest_cache .mypy_cache .ruff_cache
