# Quick start: `make train` (main job) and `make test` (the test suite). Both create .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export JAX_PLATFORMS ?= cpu

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

.PHONY: install train test bench
install: $(VENV)/.installed

# Until the actor/learner processes land, the main job is the learner throughput benchmark.
train: install
	$(PY) benchmarks/learner_throughput.py

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/learner_throughput.py
