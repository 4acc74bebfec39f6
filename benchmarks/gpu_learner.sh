#!/usr/bin/env bash
# The learner's accelerator figures in one go (about 8 minutes on an H200), for a machine with
# an NVIDIA GPU and JAX's CUDA build (pip install -e '.[cuda13]'):
#   1. the device code paths on the GPU: donated rounds, prefetch thread, device replay buffer;
#   2. benchmarks/learner_throughput.py on the GPU: state, pixels (two 128x128 cameras, batch 256,
#      DrQ augmentation, frozen ResNet10) and cached features, each with the replay buffer in
#      host memory and on the device, with a profiler trace of each;
#   3. LeRobot's learner on the same GPU in the same run, when wheels for lerobot 0.4.4 and its
#      pure-Python needs lie in .whl/ (torch itself must be installed; see lerobot_reference.py).
# Results go to $OUT (default /tmp/gpu_learner). DEVICE=cpu QUICK=1 rehearses it on a CPU.
set -u
OUT=${OUT:-/tmp/gpu_learner}
DEVICE=${DEVICE:-gpu}
QUICK=${QUICK:+--quick}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PY:-python3}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  $PY -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
} | tee "$OUT/machine.txt"

platform=$([ "$DEVICE" = gpu ] && echo cuda || echo cpu)
echo "== tests on $platform"
JAX_PLATFORMS=$platform timeout 150 $PY -m pytest -q -p no:cacheprovider -x \
    tests/test_device_buffer.py tests/test_learner_pipeline.py 2>&1 | tail -4 | tee "$OUT/tests.txt"

reference=()
if ls .whl/lerobot-*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/lrsite \
      .whl/*.whl >/dev/null 2>&1 && export PYTHONPATH=$PYTHONPATH:/tmp/lrsite
  reference=(--reference-python "$PY" --reference-device "$([ "$DEVICE" = gpu ] && echo cuda || echo cpu)")
fi

echo "== learner throughput on $DEVICE"
rm -rf /tmp/hiljax_trace
timeout 400 $PY benchmarks/learner_throughput.py --device "$DEVICE" $QUICK \
    --configs "${CONFIGS:-state,image256,cached256}" --storage cpu,device \
    --trace /tmp/hiljax_trace "${reference[@]}" 2>&1 | tee "$OUT/learner_throughput.txt"
tail -1 "$OUT/learner_throughput.txt" > "$OUT/learner_throughput.json"
for config in /tmp/hiljax_trace/*; do
  trace=$(find "$config" -name '*.trace.json.gz' | head -1)
  [ -n "$trace" ] && cp "$trace" "$OUT/trace_$(basename "$config").json.gz"
done
ls -la "$OUT"
