"""Every configuration of hiljax, as frozen dataclasses, plus JSON loading and dotted overrides.

Field names follow LeRobot's `SACConfig` where one exists (`utd_ratio`, `critic_network_kwargs`,
`policy_parameters_push_frequency`, ...) so a LeRobot user recognises them. Values are checked
when the object is built: a bad value raises `ConfigError` naming the field, never later.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from hiljax.config.errors import ConfigError, require
from hiljax.config.security import ActorSecurityConfig, LearnerSecurityConfig
from transport.factory import KINDS as TRANSPORT_KINDS
from transport.factory import check_kind

T = TypeVar("T")
log = logging.getLogger(__name__)




class FrozenMapping(dict):
    """A read-only, hashable dict, so configs holding one can be static arguments of jax.jit."""

    def __hash__(self):  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def _readonly(self, *args, **kwargs):
        raise TypeError("configuration mappings are read-only; use dataclasses.replace")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _readonly


@dataclasses.dataclass(frozen=True)
class CriticNetworkConfig:
    hidden_dims: tuple[int, ...] = (256, 256)
    activate_final: bool = True
    final_activation: str | None = None  # kept for LeRobot config compatibility; unused


@dataclasses.dataclass(frozen=True)
class ActorNetworkConfig:
    hidden_dims: tuple[int, ...] = (256, 256)
    activate_final: bool = True


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    use_tanh_squash: bool = True
    std_min: float = 1e-5
    std_max: float = 10.0
    init_final: float = 0.05  # head weights ~ uniform(-init_final, init_final)

    def __post_init__(self):
        require(0 < self.std_min < self.std_max, "policy_kwargs: need 0 < std_min < std_max")
        require(self.init_final > 0, "policy_kwargs.init_final must be > 0")


@dataclasses.dataclass(frozen=True)
class ActorLearnerConfig:
    """Where the learner listens and how often it publishes (LeRobot's name and fields).

    LeRobot keeps it inside the policy config; hiljax keeps it beside the policy (in the learner,
    actor and train configs), so an address never becomes part of a compiled function's key. A
    `policy.actor_learner_config` in a LeRobot-style file is still read (see `from_dict`)."""

    learner_host: str = "127.0.0.1"
    learner_port: int = 50051
    policy_parameters_push_frequency: float = 4.0  # seconds between parameter pushes
    queue_get_timeout: float = 2.0


LEARNER_DEVICES = ("auto", "cpu", "gpu")
# How a ResNet10 sees pixels (SACConfig / ClassifierConfig.image_normalization).
IMAGE_NORMALIZATIONS = ("imagenet", "none")


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """The SAC learner's hyper-parameters. Defaults are the reference's (reference_facts §2)."""

    # Observations: name -> shape. Images are (H, W, 3) uint8 inside hiljax (LeRobot: C, H, W).
    input_features: dict[str, tuple[int, ...]] = dataclasses.field(
        default_factory=lambda: {"observation.state": (18,)}
    )
    # Continuous action dims the policy outputs (the gripper, when discrete, is not counted).
    continuous_action_dim: int = 3
    num_discrete_actions: int | None = None  # 3 for a gripper: 0 close, 1 stay, 2 open

    # Vision. vision_encoder_name: None -> small CNN; "resnet10" -> ResNet10 (random init unless
    # pretrained_vision_weights points at a local file in any layout hiljax can read).
    vision_encoder_name: str | None = None
    pretrained_vision_weights: str | None = None
    freeze_vision_encoder: bool = True
    shared_encoder: bool = True
    image_embedding_pooling_dim: int = 8
    image_encoder_dropout: float = 0.1
    # Random-shift augmentation (DrQ): pixels padded by this much then cropped back; 0 disables.
    image_augmentation_pad: int = 4
    # Store the frozen backbone's features per frame instead of pixels: much faster learner,
    # but no pixel augmentation (the shift would have to happen before the backbone).
    cache_backbone_features: bool = False
    # How the ResNet10 sees pixels: "imagenet" (/255, then ImageNet mean/std: what the pretrained
    # weights were trained with) or "none" (/255 only: what LeRobot 0.4's SAC feeds its ResNet10;
    # set it when stock LeRobot actors act with this learner's image policy).
    image_normalization: str = "imagenet"
    # LayerNorm epsilon of the encoder and every MLP: torch's (LeRobot's) 1e-5, so parameters
    # moved to or from LeRobot compute the same actions (flax's own default is 1e-6).
    layer_norm_eps: float = 1e-5

    # SAC.
    discount: float = 0.99
    temperature_init: float = 1.0
    num_critics: int = 2
    num_subsample_critics: int | None = None
    critic_lr: float = 3e-4
    actor_lr: float = 3e-4
    temperature_lr: float = 3e-4
    critic_target_update_weight: float = 0.005  # Polyak tau
    utd_ratio: int = 1
    policy_update_freq: int = 1
    target_entropy: float | None = None  # None -> -(continuous_dim + [1 if gripper]) / 2
    use_backup_entropy: bool = True
    grad_clip_norm: float = 40.0
    latent_dim: int = 256
    state_encoder_hidden_dim: int = 256  # kept for LeRobot configs; the state branch is one layer
    critic_network_kwargs: CriticNetworkConfig = CriticNetworkConfig()
    actor_network_kwargs: ActorNetworkConfig = ActorNetworkConfig()
    policy_kwargs: PolicyConfig = PolicyConfig()
    discrete_critic_network_kwargs: CriticNetworkConfig = CriticNetworkConfig()

    # Replay and learning schedule.
    batch_size: int = 256
    online_buffer_capacity: int = 100_000
    offline_buffer_capacity: int = 100_000
    online_ratio: float = 0.5  # share of each batch from the online buffer when offline data exists
    online_step_before_learning: int = 100
    online_steps: int = 1_000_000
    # Where the learner samples from (LeRobot's name): "cpu" (host memory, batches copied to the
    # device each round) or "device" (a copy on the learner's device, sampled there; "cuda" and
    # "gpu" mean the same). Saved and restored the same way either way.
    storage_device: str = "cpu"
    seed: int = 0

    def __post_init__(self):
        features = FrozenMapping(
            (str(k), tuple(int(d) for d in v)) for k, v in dict(self.input_features).items()
        )
        object.__setattr__(self, "input_features", features)
        require(self.continuous_action_dim >= 1, "continuous_action_dim must be >= 1")
        require(0.0 < self.discount <= 1.0, f"discount must be in (0, 1], got {self.discount}")
        require(self.temperature_init > 0, "temperature_init must be > 0")
        require(self.num_critics >= 1, "num_critics must be >= 1")
        if self.num_subsample_critics is not None:
            require(
                1 <= self.num_subsample_critics <= self.num_critics,
                f"num_subsample_critics ({self.num_subsample_critics}) must be in "
                f"[1, num_critics={self.num_critics}]",
            )
        if self.num_discrete_actions is not None:
            require(self.num_discrete_actions >= 2, "num_discrete_actions must be >= 2 or null")
        for name in ("critic_lr", "actor_lr", "temperature_lr", "grad_clip_norm"):
            require(getattr(self, name) > 0, f"{name} must be > 0")
        require(0 < self.critic_target_update_weight <= 1, "critic_target_update_weight in (0, 1]")
        for name in ("utd_ratio", "policy_update_freq", "latent_dim", "batch_size",
                     "online_buffer_capacity", "offline_buffer_capacity"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        require(0.0 <= self.online_ratio <= 1.0, "online_ratio must be in [0, 1]")
        require(0.0 <= self.image_encoder_dropout < 1.0, "image_encoder_dropout in [0, 1)")
        require(self.image_augmentation_pad >= 0, "image_augmentation_pad must be >= 0")
        require(self.image_normalization in IMAGE_NORMALIZATIONS,
                f"image_normalization must be one of {IMAGE_NORMALIZATIONS}, "
                f"got {self.image_normalization!r}")
        require(0.0 < self.layer_norm_eps < 1.0, f"layer_norm_eps must be in (0, 1), "
                                                 f"got {self.layer_norm_eps}")
        storage = {"cpu": "cpu", "device": "device", "cuda": "device", "gpu": "device"}
        require(self.storage_device in storage,
                f"storage_device must be cpu or device, got {self.storage_device!r}")
        object.__setattr__(self, "storage_device", storage[self.storage_device])
        require(
            self.vision_encoder_name in (None, "resnet10", "cnn"),
            f"vision_encoder_name must be null, 'cnn' or 'resnet10', got {self.vision_encoder_name!r}",
        )
        require(self.pretrained_vision_weights is None or self.vision_encoder_name == "resnet10",
                "pretrained_vision_weights needs vision_encoder_name 'resnet10' (the weights "
                "files hiljax reads are ResNet10s)")
        require(self.shared_encoder, "shared_encoder=false is not supported: the actor and the "
                "discrete critic read the critic's encoder (LeRobot's default, shared_encoder=true)")
        require(
            not (self.cache_backbone_features and not self.freeze_vision_encoder),
            "cache_backbone_features needs freeze_vision_encoder (a trained backbone changes)",
        )
        for key, shape in self.input_features.items():
            require(all(int(d) > 0 for d in shape), f"input_features[{key!r}] bad shape {shape}")
        require(bool(self.input_features), "input_features must name at least one observation")

    @property
    def image_keys(self) -> tuple[str, ...]:
        return tuple(sorted(k for k in self.input_features if is_image_key(k)))

    @property
    def action_dim(self) -> int:
        """Width of the stored action: continuous dims plus one gripper column if discrete."""
        return self.continuous_action_dim + (1 if self.num_discrete_actions else 0)

    @property
    def resolved_target_entropy(self) -> float:
        if self.target_entropy is not None:
            return float(self.target_entropy)
        return -(self.continuous_action_dim + (1 if self.num_discrete_actions else 0)) / 2.0


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """The learner process: the SAC config plus run directory, transport and schedules.

    Field names follow LeRobot's TrainRLServerPipelineConfig where one exists.
    """

    policy: SACConfig = SACConfig()
    actor_learner_config: ActorLearnerConfig = ActorLearnerConfig()
    output_dir: str = "outputs/learner"
    job_name: str = "hiljax"
    resume: bool = False
    transport: str = "grpc"  # one of transport.factory.KINDS
    save_freq: int = 2000  # optimisation steps between checkpoints
    log_freq: int = 50  # optimisation steps between metric lines
    keep_checkpoints: int = 3
    max_payload_mb: float = 256.0  # larger payloads are refused, not buffered
    # Actors the gRPC server sizes its worker pool for (3 long-lived calls per stock LeRobot
    # actor, 1 per hiljax actor); callers beyond it are refused at once, never left hanging.
    max_actors: int = 16
    wandb_project: str | None = None  # also log to Weights & Biases (needs `pip install wandb`)
    # A LeRobot v3 dataset directory (e.g. recorded with `python -m hiljax.record`) whose
    # episodes fill the offline buffer at the start of a run (LeRobot: --dataset.root).
    dataset: str | None = None
    # Also publish parameters the way LeRobot's learner does, so stock LeRobot actors act with
    # this learner's policy. null -> on for the grpc transport (the one LeRobot's actor speaks).
    publish_lerobot_parameters: bool | None = None
    # Where the learner computes: "auto" (the accelerator when JAX has one, else the CPU),
    # "cpu", or "gpu" (an error when there is none). Actors always act on the CPU.
    device: str = "auto"
    # Batches sampled and put on the device ahead of the round that uses them (0: sample on the
    # loop's thread). Episodes are always ingested on a thread of their own by `run`.
    prefetch_batches: int = 2
    # Split every round's batch rows over all local devices (jax.sharding: parameters
    # replicated, rows sharded, still one jitted round; XLA sums the gradients). The results
    # equal one device's to float tolerance; policy.batch_size must divide by the device count.
    data_parallel: bool = False
    # An episode holding NaN or Inf: "refuse" drops it (logged with the client and the field,
    # counted in rejected_payloads); "clip" keeps it with NaN -> 0 and +-Inf -> the largest
    # finite value of that field (logged). Either way no NaN reaches an update.
    non_finite: str = "refuse"
    # TLS / tokens (gRPC) or CURVE (ZeroMQ); all null: plain (see LearnerSecurityConfig).
    security: LearnerSecurityConfig = dataclasses.field(default_factory=LearnerSecurityConfig)

    def __post_init__(self):
        require_transport(self.transport)
        require(self.device in LEARNER_DEVICES,
                f"device must be one of {LEARNER_DEVICES}, got {self.device!r}")
        require(self.prefetch_batches >= 0, "prefetch_batches must be >= 0")
        for name in ("save_freq", "log_freq", "keep_checkpoints"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1")
        require(self.max_payload_mb > 0, "max_payload_mb must be > 0")
        require(self.max_actors >= 1, "max_actors must be >= 1")
        require(self.non_finite in ("refuse", "clip"),
                f"non_finite must be 'refuse' or 'clip', got {self.non_finite!r}")


@dataclasses.dataclass(frozen=True)
class ActorConfig:
    """The actor process: which policy, where the learner is, how to act and send."""

    policy: SACConfig = SACConfig()
    actor_learner_config: ActorLearnerConfig = ActorLearnerConfig()
    transport: str = "grpc"  # one of transport.factory.KINDS
    learner_address: str | None = None  # None -> actor_learner_config host:port
    # When new parameters are applied: at episode boundaries (the reference) or immediately.
    update_parameters_at: str = "episode"
    deterministic: bool = False  # act with the policy's mean (evaluation)
    warmup_steps: int | None = None  # random actions first; None -> online_step_before_learning
    fps: float | None = None  # control rate; None -> as fast as the env goes (simulation)
    max_queue_mb: float = 512.0  # episodes waiting for the learner's acknowledgement
    # Send a partial episode every N steps instead of one payload per episode (long episodes,
    # fresher data); None = per episode, as the reference.
    send_every_steps: int | None = None
    seed: int = 0
    # No answer from the learner for this long (seconds; null: never checked): the robot stops
    # (the episode ends as truncated and is kept for resending) until the learner is back.
    learner_timeout_s: float | None = 10.0
    # While the learner is gone: "hold" (no new goals: the arm holds its pose) or "disconnect"
    # (the env is closed, so a real arm's torque goes as robot.disable_torque_on_disconnect
    # says, and it is reconnected when the learner answers again).
    on_learner_lost: str = "hold"
    # Episodes stay on the disk until the learner acknowledges them, so an actor process that
    # dies loses nothing: the next one with the same index sends them first. Each actor uses
    # <spool_dir>/actor-<index>; "auto": <output_dir>/spool; null: memory only (the reference).
    spool_dir: str | None = "auto"
    # TLS / token (gRPC) or CURVE (ZeroMQ); all null: plain (see ActorSecurityConfig).
    security: ActorSecurityConfig = dataclasses.field(default_factory=ActorSecurityConfig)

    def __post_init__(self):
        require_transport(self.transport)
        require(self.update_parameters_at in ("episode", "immediately"),
                 "update_parameters_at must be 'episode' or 'immediately'")
        require(self.fps is None or self.fps > 0, "fps must be > 0 or null")
        require(self.warmup_steps is None or self.warmup_steps >= 0, "warmup_steps >= 0")
        require(self.send_every_steps is None or self.send_every_steps >= 1,
                 "send_every_steps must be >= 1 or null")
        require(self.learner_timeout_s is None or self.learner_timeout_s > 0,
                "learner_timeout_s must be > 0 or null")
        require(self.on_learner_lost in ("hold", "disconnect"),
                f"on_learner_lost must be 'hold' or 'disconnect', got {self.on_learner_lost!r}")
        require(self.spool_dir is None or (isinstance(self.spool_dir, str) and self.spool_dir),
                "spool_dir must be a directory, 'auto' or null")

    @property
    def address(self) -> str:
        network = self.actor_learner_config
        return self.learner_address or f"{network.learner_host}:{network.learner_port}"


def require_transport(kind: str, allowed: tuple[str, ...] = TRANSPORT_KINDS) -> None:
    """The transport kinds are transport.factory's; configs only check against them."""
    try:
        check_kind(kind, allowed)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def is_image_key(key: str) -> bool:
    return key.startswith("observation.image")


# ---------------------------------------------------------------------------------------------
# Generic dict <-> dataclass conversion (strict: unknown keys and wrong types are errors).


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            require(type(None) in args, f"{where}: null is not allowed")
            return None
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for candidate in non_none:
            try:
                return _convert(value, candidate, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError("; ".join(errors))
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        require(isinstance(value, dict), f"{where}: expected an object, got {value!r}")
        return from_dict(annotation, value, where)
    if origin is tuple:
        require(isinstance(value, (list, tuple)), f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        require(isinstance(value, dict), f"{where}: expected an object, got {value!r}")
        _, val_t = args if args else (Any, Any)
        return {k: _convert(v, val_t, f"{where}[{k!r}]") for k, v in value.items()}
    if annotation is bool:
        require(isinstance(value, bool), f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        require(isinstance(value, int) and not isinstance(value, bool),
                 f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        require(isinstance(value, (int, float)) and not isinstance(value, bool),
                 f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        require(isinstance(value, str), f"{where}: expected a string, got {value!r}")
        return value
    return value


def _lift_actor_learner_config(cls: type, data: dict, where: str) -> dict:
    """LeRobot's place for the network settings is `policy.actor_learner_config`; hiljax's is
    beside the policy. Move it there (its entries win over ones already beside the policy, so a
    `policy.actor_learner_config.learner_port=...` override still works). A bare SACConfig has no
    place for it: it is dropped with a warning (old checkpoints and LeRobot policy files)."""
    names = {f.name for f in dataclasses.fields(cls)}
    where = f"{where}." if where else ""
    if cls is SACConfig and "actor_learner_config" in data:
        log.warning("%sactor_learner_config is not a policy setting in hiljax (it belongs to the "
                    "learner / actor / train config); ignored here", where)
        return {k: v for k, v in data.items() if k != "actor_learner_config"}
    policy = data.get("policy")
    if not {"policy", "actor_learner_config"} <= names or not isinstance(policy, dict) \
            or "actor_learner_config" not in policy:
        return data
    lifted = policy["actor_learner_config"]
    require(isinstance(lifted, dict), f"{where}policy.actor_learner_config: expected an object")
    beside = data.get("actor_learner_config") or {}
    require(isinstance(beside, dict), f"{where}actor_learner_config: expected an object")
    data = {**data, "policy": {k: v for k, v in policy.items() if k != "actor_learner_config"}}
    data["actor_learner_config"] = {**beside, **lifted}
    return data


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build dataclass `cls` from a plain dict; unknown keys and wrong types raise ConfigError."""
    data = _lift_actor_learner_config(cls, data, where)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    require(not unknown, f"{where or cls.__name__}: unknown field(s) {unknown}; "
                          f"known: {sorted(names)}")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc


def to_dict(obj: Any) -> Any:
    """Dataclass -> JSON-ready dict (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _parse_override_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare string such as resnet10


def apply_overrides(data: dict, overrides: list[str], prefix_alias: str | None = None) -> dict:
    """Apply `a.b.c=value` overrides (value parsed as JSON, else taken as a string) to `data`.

    `prefix_alias` lets `--policy.utd_ratio=4` address the top level (LeRobot writes `policy.`).
    """
    data = json.loads(json.dumps(data))  # deep copy, JSON types only
    for item in overrides:
        item = item.removeprefix("--")
        require("=" in item, f"override {item!r} must look like key.path=value")
        path, text = item.split("=", 1)
        keys = path.split(".")
        if prefix_alias and keys[0] == prefix_alias:
            keys = keys[1:]
        require(bool(keys) and all(keys), f"override {item!r}: empty key")
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            require(isinstance(node, dict), f"override {item!r}: {key} is not an object")
        node[keys[-1]] = _parse_override_value(text)
    return data


def read_json_object(path: str | Path) -> dict:
    """A config file's JSON object, or ConfigError saying what is wrong with the file."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
    require(isinstance(data, dict), f"config file {path} must hold a JSON object")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] = (),
                prefix_alias: str | None = None) -> T:
    """Load `cls` from a JSON file (or defaults when `path` is None) plus dotted overrides."""
    data = read_json_object(path) if path is not None else {}
    data = apply_overrides(data, list(overrides), prefix_alias)
    return from_dict(cls, data)


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(config), indent=2) + "\n")
