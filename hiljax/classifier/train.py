"""Train a reward classifier on a recorded LeRobot dataset and save it.

    python -m hiljax.classifier.train --dataset data/pick_cube --output outputs/classifier \\
        --config configs/classifier_sim.json max_steps=1000 threshold_min_precision=0.95

Frames are labelled by `next.reward` (1 = success). The run calls exactly what a notebook
calls (`from_dataset`, `train_classifier`, `save_classifier`) and writes into --output: the
classifier (config.json + model.safetensors, loadable with hiljax.classifier.load_classifier),
history.json and training_curves.png. Exit codes: 0 done, 1 the data could not be used,
2 a bad config / override / command line or an output directory that is not empty.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from hiljax.config import ConfigError

from .config import ClassifierConfig, load_classifier_config

log = logging.getLogger("hiljax.classifier.train")

USAGE_ERROR, DATA_ERROR = 2, 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hiljax.classifier.train",
        description=__doc__.split("\n\n")[0],
        epilog="Overrides are key=value pairs of ClassifierConfig fields, the value parsed as "
               "JSON (e.g. max_steps=500 image_keys='[\"observation.images.front\"]').")
    parser.add_argument("--dataset", required=True, help="a LeRobot dataset directory")
    parser.add_argument("--output", required=True, help="directory to write the classifier to")
    parser.add_argument("--config", help="ClassifierConfig JSON (default: built-in defaults)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the contents of a non-empty --output directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    return parser.parse_intermixed_args(argv)


def _output_ready(output: Path, overwrite: bool) -> bool:
    if output.exists() and not output.is_dir():
        log.error("--output %s exists and is not a directory", output)
        return False
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        log.error("--output %s is not empty: pass --overwrite to replace its classifier, or "
                  "choose another directory", output)
        return False
    return True


def _log_outcome(classifier, output: Path) -> None:
    summary = classifier.metrics
    best = summary.get("best_validation")
    if best:
        log.info("best validation (step %d of %d%s): accuracy %.3f, precision %.3f, recall %.3f, "
                 "loss %.4f", summary["best_step"], summary["steps"],
                 ", stopped early" if summary["stopped_early"] else "", best["accuracy"],
                 best["precision"], best["recall"], best["loss"])
    else:
        log.info("no validation split (validation_fraction=0 or a single episode): kept the "
                 "last parameters after %d steps", summary["steps"])
    at_threshold = summary.get("validation_at_threshold")
    if at_threshold:
        log.info("decision threshold %.3f: validation precision %.3f, recall %.3f",
                 classifier.threshold, at_threshold["precision"], at_threshold["recall"])
    log.info("saved the classifier to %s (load it with "
             "hiljax.classifier.load_classifier(%r))", output, str(output))


def run(dataset: str, output: Path, config: ClassifierConfig, overwrite: bool,
        progress: bool) -> int:
    from .data import from_dataset
    from .plots import plot_training_curves
    from .predict import save_classifier
    from .training import train_classifier

    try:
        data = from_dataset(dataset, config.num_classes, config.image_keys)
    except (ImportError, OSError, ValueError) as exc:
        log.error("cannot use dataset %s: %s", dataset, exc)
        return DATA_ERROR
    try:
        classifier, history = train_classifier(data, config, progress=progress)
    except ValueError as exc:
        log.error("cannot train on %s: %s", dataset, exc)
        return DATA_ERROR
    save_classifier(classifier, output, overwrite=overwrite)
    (output / "history.json").write_text(json.dumps(history.to_dict(), indent=1) + "\n")
    plot_training_curves(history, output / "training_curves.png")
    _log_outcome(classifier, output)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_classifier_config(args.config, args.overrides)
    except ConfigError as exc:
        log.error("bad classifier config: %s", exc)
        return USAGE_ERROR
    output = Path(args.output)
    if not _output_ready(output, args.overwrite):
        return USAGE_ERROR
    return run(args.dataset, output, config, args.overwrite, progress=not args.no_progress)


if __name__ == "__main__":
    sys.exit(main())
