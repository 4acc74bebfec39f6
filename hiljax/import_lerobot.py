"""Start hiljax from a LeRobot SAC `pretrained_model` directory (no torch needed).

    python -m hiljax.import_lerobot lerobot_model --output outputs/from_lerobot
    python -m hiljax.learner --config outputs/from_lerobot/learner_config.json   # train on
    python -m hiljax.eval --checkpoint outputs/from_lerobot --config configs/...  # or evaluate

The output is a hiljax run whose step-0 checkpoint holds LeRobot's policy (actor, critics, target
critics, gripper critic, temperature, frozen ResNet10) with empty replay buffers, and a learner
config that resumes it; actors then receive that policy from the learner. `--config` gives the
learner settings (transport, ports, schedules) to keep; its policy section is replaced by the
model's. A reward classifier directory needs no import: point `reward_classifier_pretrained_path`
at it.
"""

from __future__ import annotations

import argparse
import logging

from hiljax.config import ConfigError, LearnerConfig, load_config
from hiljax.interop.tables import LayoutError
from hiljax.run.lerobot_models import import_pretrained

log = logging.getLogger("hiljax.import_lerobot")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="LeRobot pretrained_model directory (config.json + "
                                      "model.safetensors)")
    parser.add_argument("--output", required=True, help="the hiljax run directory to create")
    parser.add_argument("--config", help="LearnerConfig JSON whose non-policy settings to keep")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        learner = load_config(LearnerConfig, args.config) if args.config else None
        run = import_pretrained(args.model, args.output, learner=learner)
    except (ConfigError, LayoutError, FileExistsError, OSError) as error:
        log.error("cannot import %s: %s", args.model, error)
        return 2
    print(f"wrote {run}; continue training with: "
          f"python -m hiljax.learner --config {run}/learner_config.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
