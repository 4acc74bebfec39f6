"""The configs benchmarks/learner_throughput.py measures, and the replay buffer it fills with
random episodes (the steady state of a wrapped buffer)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from hiljax.agents import sac
from hiljax.config import CriticNetworkConfig, SACConfig
from hiljax.storage.buffer import ReplayBuffer

CAMERAS = ("front", "wrist")
IMAGE_SHAPE = (128, 128, 3)
STATE_DIM = 18
UTD_RATIO = 2
BUFFER_CAPACITY = 2000
EPISODE_LENGTH = 100


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    batch_size: int
    images: bool = False
    cached: bool = False  # cache_backbone_features: the buffer stores (4, 4, 512) features
    # LeRobot's PyTorch learner, steps/s, RECORDED on this machine class (2 threads); shown
    # labelled as recorded unless --reference-python measures it in the same run.
    reference: float = 0.0
    goal: float | None = None
    windows: int = 5  # update-only windows
    sample_windows: int = 3  # sample+update windows
    window_seconds: float = 2.0  # target length of one window (at least one round)
    piece_seconds: float = 2.0  # time budget per piece of the breakdown

    def quick(self) -> Case:
        return dataclasses.replace(self, windows=2, sample_windows=1,
                                   window_seconds=self.window_seconds / 4,
                                   piece_seconds=self.piece_seconds / 4)


CASES = {c.name: c for c in (
    Case("state", 256, reference=21.0, goal=105.0, windows=7, sample_windows=5),
    Case("image64", 64, images=True, reference=0.3, goal=3.0, window_seconds=5.0,
         piece_seconds=4.0),
    Case("image256", 256, images=True, reference=0.063, windows=2, sample_windows=1,
         window_seconds=5.0, piece_seconds=5.0),
    # The reference has no feature cache: its figures are for the pixel pipeline.
    Case("cached64", 64, images=True, cached=True, reference=0.3, goal=3.0),
    Case("cached256", 256, images=True, cached=True, reference=0.063),
)}


def make_config(case: Case) -> SACConfig:
    features = {"observation.state": (STATE_DIM,)}
    if case.images:
        features.update({f"observation.images.{cam}": IMAGE_SHAPE for cam in CAMERAS})
    return SACConfig(
        input_features=features,
        continuous_action_dim=3,
        num_discrete_actions=3,  # the gripper, through the discrete critic
        vision_encoder_name="resnet10" if case.images else None,  # random weights
        freeze_vision_encoder=True,
        cache_backbone_features=case.cached,
        latent_dim=64 if case.images else 256,
        batch_size=case.batch_size,
        num_critics=2,
        critic_network_kwargs=CriticNetworkConfig(hidden_dims=(256, 256)),
        utd_ratio=UTD_RATIO,
        policy_update_freq=1,
    )


# ---------------------------------------------------------------------------------------------
# The replay buffer, filled with random episodes.


def observation_spec(config: SACConfig, params: dict) -> dict:
    """Buffer spec: state float32; frames uint8, or the backbone's features when cached."""
    spec = {}
    for key, shape in config.input_features.items():
        spec[key] = (shape, np.float32) if key not in config.image_keys else (shape, np.uint8)
    if config.image_keys and config.cache_backbone_features:
        frames = {k: jax.ShapeDtypeStruct((1, *config.input_features[k]), jnp.uint8)
                  for k in config.image_keys}
        out = jax.eval_shape(functools.partial(sac.backbone_features, config, params), frames)
        for key in config.image_keys:
            spec[key] = (tuple(out[key].shape[1:]), np.dtype(out[key].dtype))
    return spec


def random_frames(shape, dtype, n: int, rng: np.random.Generator) -> np.ndarray:
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    x = rng.standard_normal((n, *shape), dtype=np.float32)
    x = np.maximum(x, 0.0) if len(shape) == 3 else x  # features come out of a ReLU
    return x.astype(dtype)


def fill_buffer(buffer: ReplayBuffer, episodes: int, rng: np.random.Generator) -> None:
    t = EPISODE_LENGTH
    for episode in range(episodes):
        frames = {k: random_frames(shape, dtype, t + 1, rng)
                  for k, (shape, dtype) in buffer.observation_spec.items()}
        actions = np.concatenate([rng.uniform(-1, 1, (t, buffer.action_dim - 1)),
                                  rng.integers(0, 3, (t, 1))], axis=1).astype(np.float32)
        rewards = np.zeros(t, np.float32)
        rewards[-1] = float(rng.random() < 0.5)
        ends = np.zeros(t, bool)
        ends[-1] = True
        buffer.add_batch(
            {k: v[:-1] for k, v in frames.items()}, actions, rewards,
            {k: v[1:] for k, v in frames.items()},
            dones=ends & (episode % 2 == 0), truncateds=ends & (episode % 2 == 1),
            is_intervention=rng.random(t) < 0.1, discrete_penalty=np.zeros(t, np.float32),
        )


def naive_bytes_per_transition(buffer: ReplayBuffer) -> int:
    """What storing obs and next_obs separately (as the reference does) would cost."""
    frames = sum(int(np.prod(s)) * np.dtype(d).itemsize for s, d in buffer.observation_spec.values())
    columns = 4 * (buffer.action_dim + 2) + 3  # actions, reward, penalty float32; 3 flags
    return 2 * frames + columns
