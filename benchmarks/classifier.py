"""Reward classifier speed on CPU: training throughput and prediction latency.

    python benchmarks/classifier.py                 # ~40 s on 2 cores
    python benchmarks/classifier.py --quick
    python benchmarks/classifier.py | tail -1 | jq .predict_latency_ms

Two 128x128 cameras (front, wrist), ResNet10 with random weights (the speed does not depend on
the weights), the reference's model sizes (latent 256, hidden 256, batch 32):
  * feature extraction: the frozen backbone over every frame, once per dataset (frames/s; a
    frame = one observation, both cameras). Compilation excluded, reported separately.
  * head training: AdamW steps on cached features, in jitted rounds of 50 (samples/s = steps/s
    x batch). Compilation excluded.
  * end to end: `train_classifier` on N synthetic frames for a fixed number of steps, from
    scratch in this process (backbone init, compiles, features, split, training, threshold),
    reported as wall seconds and dataset frames per second.
  * prediction: `clf(observation)` on one observation, as RewardWrapper calls it, after
    warm-up: median and p90 milliseconds over --calls calls.
The 2 cores may be shared: `other_cpu_cores` is the load other processes added meanwhile.
The LAST line printed is one line of JSON holding every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np
from _timing import OtherCpu, block, peak_rss_mb  # benchmarks/ (the script folder) is on sys.path

from hiljax.classifier import ClassifierConfig, ClassifierData, train_classifier
from hiljax.classifier.features import extract_features
from hiljax.classifier.model import (
    backbone_feature_shapes,
    init_backbone_params,
    init_network_params,
)
from hiljax.classifier.training import (
    create_train_state,
    make_training_set,
    train_round,
)

CAMERAS = ("observation.images.front", "observation.images.wrist")
IMAGE_SHAPE = (128, 128, 3)
ROUND_STEPS = 50


def synthetic_data(num_frames: int, rng: np.random.Generator) -> ClassifierData:
    """Random frames, 10-frame episodes whose last 2 frames are successes."""
    images = {k: rng.integers(0, 256, (num_frames, *IMAGE_SHAPE), dtype=np.uint8) for k in CAMERAS}
    labels = (np.arange(num_frames) % 10 >= 8).astype(np.int64)
    return ClassifierData(images, labels, np.arange(num_frames) // 10)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    """(wall seconds until the result is ready, result) of fn(*args, **kwargs)."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    block(result)
    return time.perf_counter() - start, result


def feature_extraction(config: ClassifierConfig, backbone_params, data: ClassifierData) -> dict:
    warm = {k: v[:32] for k, v in data.images.items()}
    compile_s, _ = timed(extract_features, config, backbone_params, warm, progress=False)
    seconds, features = timed(extract_features, config, backbone_params, data.images,
                              progress=False)
    return {"compile_s": compile_s, "frames_per_s": data.num_frames / seconds,
            "images_per_s": data.num_frames * len(CAMERAS) / seconds,
            "ms_per_frame": 1e3 * seconds / data.num_frames, "features": features}


def head_training(config: ClassifierConfig, backbone_params, features: dict,
                  labels: np.ndarray, rounds: int) -> dict:
    shapes = backbone_feature_shapes(config, backbone_params, {k: IMAGE_SHAPE for k in CAMERAS})
    state = create_train_state(config, init_network_params(config, jax.random.key(1), shapes))
    train_set = make_training_set(features, labels)
    compile_s, (state, _) = timed(train_round, config, state, train_set, jax.random.key(2),
                                  ROUND_STEPS)
    times = []
    for index in range(rounds):
        seconds, (state, _) = timed(train_round, config, state, train_set,
                                    jax.random.key(3 + index), ROUND_STEPS)
        times.append(seconds)
    steps_per_s = ROUND_STEPS / statistics.median(times)
    return {"compile_s": compile_s, "steps_per_s": steps_per_s,
            "samples_per_s": steps_per_s * config.batch_size}


def end_to_end(config: ClassifierConfig, data: ClassifierData, steps: int) -> dict:
    config = dataclasses.replace(config, max_steps=steps, eval_every=ROUND_STEPS,
                                 patience=10**6, seed=7)
    start = time.perf_counter()
    classifier, _ = train_classifier(data, config, progress=False)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "frames": data.num_frames, "steps": steps,
            "frames_per_s": data.num_frames / seconds,
            "feature_seconds": classifier.metrics["feature_seconds"],
            "training_seconds": classifier.metrics["training_seconds"]}, classifier


def prediction_latency(classifier, data: ClassifierData, calls: int) -> dict:
    observations = [{**{k: data.images[k][i % data.num_frames] for k in CAMERAS},
                     "observation.state": np.zeros(18, np.float32)} for i in range(calls)]
    for observation in observations[:10]:  # warm-up (compile, caches)
        classifier(observation)
    times = []
    for observation in observations:
        start = time.perf_counter()
        classifier(observation)
        times.append(1e3 * (time.perf_counter() - start))
    return {"median_ms": statistics.median(times),
            "p90_ms": float(np.percentile(times, 90)), "calls": calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=512, help="dataset frames (2 cameras)")
    parser.add_argument("--rounds", type=int, default=8, help=f"timed rounds of {ROUND_STEPS}")
    parser.add_argument("--steps", type=int, default=500, help="end-to-end training steps")
    parser.add_argument("--calls", type=int, default=200, help="timed prediction calls")
    parser.add_argument("--quick", action="store_true", help="a smaller, noisier run")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.rounds, args.steps, args.calls = 128, 3, 100, 50
    logging.basicConfig(level=logging.WARNING)

    rng = np.random.default_rng(0)
    data = synthetic_data(args.frames, rng)
    config = ClassifierConfig(image_keys=CAMERAS)  # the reference's sizes, batch 32
    other = OtherCpu()
    backbone_params = init_backbone_params(config, jax.random.key(0), IMAGE_SHAPE)

    features = feature_extraction(config, backbone_params, data)
    print(f"feature extraction: {features['frames_per_s']:.1f} frames/s "
          f"({features['images_per_s']:.1f} images/s, {features['ms_per_frame']:.1f} ms/frame; "
          f"compile {features['compile_s']:.1f} s)")
    head = head_training(config, backbone_params, features.pop("features"), data.labels,
                         args.rounds)
    print(f"head training: {head['samples_per_s']:.0f} samples/s ({head['steps_per_s']:.1f} "
          f"steps/s at batch {config.batch_size}; compile {head['compile_s']:.1f} s)")
    e2e, classifier = end_to_end(config, data, args.steps)
    print(f"end to end: {e2e['frames']} frames, {e2e['steps']} steps in {e2e['seconds']:.1f} s "
          f"= {e2e['frames_per_s']:.1f} frames/s (features {e2e['feature_seconds']:.1f} s, "
          f"training {e2e['training_seconds']:.1f} s, the rest init and compiles)")
    latency = prediction_latency(classifier, data, args.calls)
    print(f"prediction: median {latency['median_ms']:.1f} ms, p90 {latency['p90_ms']:.1f} ms "
          f"per observation (2 x 128x128, {latency['calls']} calls)")
    others = other.cores()
    print(f"other processes used {others:.2f} cores meanwhile; peak RSS {peak_rss_mb():.0f} MiB")
    print(json.dumps({
        "feature_extraction": features, "head_training": head, "end_to_end": e2e,
        "predict_latency_ms": latency, "other_cpu_cores": others,
        "peak_rss_mb": peak_rss_mb(), "jax_backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
