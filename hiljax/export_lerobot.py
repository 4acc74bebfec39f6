"""Export a hiljax model as a LeRobot `pretrained_model` directory (no torch needed).

    python -m hiljax.export_lerobot --checkpoint outputs/sim_pick_lift --output lerobot_model
    python -m hiljax.export_lerobot --classifier outputs/classifier --output lerobot_classifier

A SAC run (its newest complete checkpoint, or a given step_* directory) becomes what LeRobot's
`SACPolicy.from_pretrained(DIR)` loads: config.json + model.safetensors in LeRobot 0.4's names.
A reward classifier becomes what LeRobot's `Classifier.from_pretrained(DIR)` loads.
"""

from __future__ import annotations

import argparse
import logging

from hiljax.interop.tables import LayoutError
from hiljax.run.checkpoint import CheckpointError
from hiljax.run.lerobot_models import export_run

log = logging.getLogger("hiljax.export_lerobot")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a SAC run directory, its checkpoints/ or a step_*")
    source.add_argument("--classifier", help="a saved hiljax reward classifier")
    parser.add_argument("--output", required=True, help="the pretrained_model directory to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        if args.checkpoint:
            out = export_run(args.checkpoint, args.output)
        else:
            from hiljax.classifier import export_classifier_to_lerobot

            out = export_classifier_to_lerobot(args.classifier, args.output)
    except (CheckpointError, LayoutError, ValueError, OSError) as error:
        log.error("cannot export: %s", error)
        return 2
    print(f"wrote {out} (load it in LeRobot with from_pretrained)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
