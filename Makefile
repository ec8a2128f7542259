# `make demo` and `make test` work on a fresh machine: they create .venv and install into it.
# torch is pinned through constraints.txt (the CPU build); the package itself asks only torch>=2.2.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-all gpu-check lint format bench-setup bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/vaekit demo --out runs/demo --overwrite

# Two worker processes of one torch thread each (two of two threads would make OpenMP spin on 2
# cores); tests marked xdist_group share a worker (the whole-life contract loads its runs in a fresh process).
TEST_WORKERS ?= 2

test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-all: setup
	$(BIN)/python -m pytest -m ""

# On a machine with a CUDA GPU: the GPU-marked tests and the GPU benchmarks (BENCHMARKS.md rows);
# without one it says so and exits 0.
gpu-check: setup
	$(BIN)/python benchmarks/gpu_check.py

# pythae (the speed comparison) lives in .venv only for benchmarks: the `bench` extra.
bench-setup: setup
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,bench]"

bench: bench-setup
	$(BIN)/python benchmarks/speed.py --threads 2 --repeats 3

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
