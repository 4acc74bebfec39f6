"""Acting with a trained SAC policy: what the actor process and evaluation share.

    policy = make_policy(config, actor_params, backbone, seed=0, deterministic=True)
    action = policy(observation)          # observation dict -> (action_dim,) float32

`actor_params` is what the learner publishes (`SACAgent.actor_parameters()`: encoder, policy head,
gripper head, and the backbone when it is trained); `backbone` is the frozen backbone, which is
never sent: each side builds it from the config (`hiljax.networks.backbone.frozen_backbone`) and
the digest in the parameters' metadata proves they agree.
"""

from __future__ import annotations

import jax
import numpy as np

from hiljax.agents.sac import sample_actions
from hiljax.config import SACConfig


class Policy:
    """The policy as a callable: one observation dict (no batch axis) -> one action."""

    def __init__(self, config: SACConfig, actor_params: dict, backbone: dict, *, seed: int = 0,
                 deterministic: bool = False):
        self.config, self.deterministic = config, deterministic
        self.actor_params = jax.tree.map(jax.numpy.asarray, actor_params)
        self.backbone = backbone
        self.key = jax.random.key(seed)

    def __call__(self, observation: dict) -> np.ndarray:
        self.key, key = jax.random.split(self.key)
        batch = {k: np.asarray(v)[None] for k, v in observation.items()}
        action = sample_actions(self.config, self.actor_params, self.backbone, batch, key,
                                deterministic=self.deterministic)
        return np.asarray(action[0], np.float32)

    def load(self, actor_params: dict) -> None:
        """Act with newer parameters from now on (same config, backbone and key stream)."""
        self.actor_params = jax.tree.map(jax.numpy.asarray, actor_params)


def make_policy(config: SACConfig, actor_params: dict, backbone: dict, *, seed: int = 0,
                deterministic: bool = False) -> Policy:
    return Policy(config, actor_params, backbone, seed=seed, deterministic=deterministic)
