# Quick start: `make train` (main job) and `make test` (the test suite). Both create .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export JAX_PLATFORMS ?= cpu
# MuJoCo cameras render offscreen through EGL (Debian: libegl1 libgl1-mesa-dri).
export MUJOCO_GL ?= egl

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,gymhil]"
	touch $@

.PHONY: install train test bench bench-transport proto
install: $(VENV)/.installed

# Until the actor/learner processes land, the main job is the learner throughput benchmark.
train: install
	$(PY) benchmarks/learner_throughput.py

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/learner_throughput.py

bench-transport: install
	$(PY) benchmarks/transport_throughput.py

# Regenerate transport/_generated/ from proto/services.proto (a test fails when it is stale).
proto: install
	$(PY) -m transport.gen_proto
