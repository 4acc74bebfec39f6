"""The env of a run, as the actor and evaluation build it: the robot env stack plus the reward
classifier of `reward_classifier_pretrained_path`, loaded here (the env never imports JAX models;
it takes the classifier as a plain callable)."""

from __future__ import annotations

import logging

from hiljax.envs.configs import HILSerlRobotEnvConfig
from hiljax.envs.factory import make_robot_env

log = logging.getLogger(__name__)


def make_env(env_config: HILSerlRobotEnvConfig):
    classifier = None
    if env_config.reward_classifier_pretrained_path:
        from hiljax.classifier import load_classifier  # JAX only when a classifier is used

        classifier = load_classifier(env_config.reward_classifier_pretrained_path)
        # The env config's threshold decides (as in LeRobot); the one saved with the
        # classifier (e.g. picked in the notebook) is only reported.
        log.info("reward classifier %s: success when P >= %.2f (reward_classifier_threshold; "
                 "saved with the classifier: %.2f)", env_config.reward_classifier_pretrained_path,
                 env_config.reward_classifier_threshold, classifier.threshold)
    return make_robot_env(env_config, reward_classifier=classifier)
