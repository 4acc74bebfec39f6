# Quick start: `make train` (main job) and `make test` (the test suite). Both create .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# JAX's device: the tests run on the CPU; a run's learner takes the GPU when JAX has one
# (learner.device, default auto) and its actors stay on the CPU.
# MuJoCo cameras render offscreen through EGL (Debian: libegl1 libgl1-mesa-dri).
export MUJOCO_GL ?= egl

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,gymhil]"
	touch $@

.PHONY: install train test bench bench-transport bench-train bench-classifier record-sim proto
install: $(VENV)/.installed

# The main job: HIL-SERL on the MuJoCo simulator (learner + actor processes, a scripted person),
# into a fresh run directory. Ctrl-C stops cleanly; TRAIN_ARGS="--resume output_dir=..." resumes.
RUN_DIR ?= outputs/sim_$(shell date +%Y%m%d_%H%M%S)
TRAIN_ARGS ?= --max-minutes 30
train: install
	$(PY) -m hiljax.train output_dir=$(RUN_DIR) $(TRAIN_ARGS)

test: install
	JAX_PLATFORMS=cpu $(PY) -m pytest -q

bench: install
	$(PY) benchmarks/learner_throughput.py

bench-transport: install
	$(PY) benchmarks/transport_throughput.py

bench-classifier: install
	$(PY) benchmarks/classifier.py

# 20 scripted demonstrations on the simulator, two cameras, into datasets/sim_pick_lift
# (the reward classifier notebook's default dataset).
record-sim: install
	$(PY) -m hiljax.record --config configs/env_record_sim.json

# Regenerate transport/_generated/ from proto/services.proto (a test fails when it is stale).
proto: install
	$(PY) -m transport.gen_proto

# The 30-minute sim result with its PNG curves (see README, Results).
bench-train: install
	$(PY) benchmarks/train_sim.py --minutes 30 --output-dir $(RUN_DIR)
