"""LeRobot's parameter names, one table set per LeRobot layout version: DATA, no logic.

Supported: "0.4" (lerobot 0.4.x, `lerobot.policies.sac`; pinned by LeRobot 0.4.4's own fixtures
in tests/fixtures/lerobot_policy). LeRobot renamed `policies/sac` to `policies/gaussian_actor` in
2026; supporting that layout is adding a `SACLayout` here with its names, and registering it in
`SAC_LAYOUTS`.

Each table maps a hiljax path (relative to a module of hiljax's parameter tree) to a LeRobot key
(relative to the matching torch module) with a transform (see hiljax.interop.tables). Where a
table holds "{placeholders}", `hiljax.interop.lerobot_sac` fills them (cameras, state branches,
MLP layers, critic index) and puts the module prefixes below in front.
"""

from __future__ import annotations

import dataclasses

from .tables import CONV, SCALAR, SPATIAL, TRANSPOSE, Table, rules

# --- pieces shared by the SAC policy and the reward classifier (LeRobot 0.4.x) -------------------

# The hub ResNet10 (`helper2424/resnet10`, Conv2dJax / MyGroupNorm wrappers) under its own names.
RESNET10_STEM = rules(
    ("conv_init/kernel", "embedder.0.weight", CONV),
    ("norm_init/scale", "embedder.1.group_norm.weight"),
    ("norm_init/bias", "embedder.1.group_norm.bias"),
)
RESNET10_BLOCK = rules(  # {b}: stage 0..3
    ("ResNetBlock_{b}/Conv_0/kernel", "encoder.stages.{b}.conv1.conv.weight", CONV),
    ("ResNetBlock_{b}/MyGroupNorm_0/scale", "encoder.stages.{b}.norm1.group_norm.weight"),
    ("ResNetBlock_{b}/MyGroupNorm_0/bias", "encoder.stages.{b}.norm1.group_norm.bias"),
    ("ResNetBlock_{b}/Conv_1/kernel", "encoder.stages.{b}.conv2.conv.weight", CONV),
    ("ResNetBlock_{b}/MyGroupNorm_1/scale", "encoder.stages.{b}.norm2.group_norm.weight"),
    ("ResNetBlock_{b}/MyGroupNorm_1/bias", "encoder.stages.{b}.norm2.group_norm.bias"),
)
RESNET10_SHORTCUT = rules(  # {b}: stages 1..3 change shape and have a projection shortcut
    ("ResNetBlock_{b}/conv_proj/kernel", "encoder.stages.{b}.shortcut.0.conv.weight", CONV),
    ("ResNetBlock_{b}/norm_proj/scale", "encoder.stages.{b}.shortcut.1.group_norm.weight"),
    ("ResNetBlock_{b}/norm_proj/bias", "encoder.stages.{b}.shortcut.1.group_norm.bias"),
)
RESNET10_STAGES = (0, 1, 2, 3)
RESNET10_SHORTCUT_STAGES = (1, 2, 3)
HUB_RESNET10 = "helper2424/resnet10"  # LeRobot's vision_encoder_name / model_name for it


@dataclasses.dataclass(frozen=True)
class SACLayout:
    """Where every hiljax SAC parameter lives in LeRobot's SACPolicy of one version."""

    version: str
    # Observation encoder (torch SACObservationEncoder), relative to its module.
    state_branches: dict  # observation key -> LeRobot encoder branch
    encoder_state: Table  # {feature}: hiljax module name, {branch}: LeRobot branch
    encoder_camera: Table  # {camera}: the image key with dots as underscores (both sides)
    image_encoder_prefix: str  # the frozen backbone inside the encoder
    # MLP (torch MLP: Linear, LayerNorm, activation per layer; no dropout).
    mlp_linear: Table  # {i}: hiljax layer, {linear}: torch index 3i
    mlp_norm: Table  # {i}, {norm}: torch index 3i + 1
    # Heads.
    actor_mlp: str  # actor MLP prefix in policy.actor
    actor_heads: Table
    discrete_mlp: str  # discrete critic MLP prefix in policy.discrete_critic
    critic_mlp: str  # MLP prefix inside one critic head
    output_layer: Table  # discrete critic and critic heads
    critic_head: str  # {k}: critic index
    # Modules of the full policy (SACPolicy.state_dict, model.safetensors); the shared encoder
    # appears under each of `encoder_modules`.
    log_alpha: Table
    encoder_modules: tuple[str, ...]
    critic_ensemble: str
    critic_target: str
    discrete_critic: str
    discrete_critic_target: str
    actor: str
    # The parameter push: torch.save({push_actor: actor, push_discrete_critic: discrete critic}).
    push_actor: str
    push_discrete_critic: str


LEROBOT_0_4 = SACLayout(
    version="0.4",
    state_branches={"observation.state": "state_encoder",
                    "observation.environment_state": "env_encoder"},
    encoder_state=rules(
        ("project_{feature}/kernel", "{branch}.0.weight", TRANSPOSE),
        ("project_{feature}/bias", "{branch}.0.bias"),
        ("norm_{feature}/scale", "{branch}.1.weight"),
        ("norm_{feature}/bias", "{branch}.1.bias"),
    ),
    encoder_camera=rules(
        ("camera_{camera}/spatial_kernel", "spatial_embeddings.{camera}.kernel", SPATIAL),
        ("camera_{camera}/kernel", "post_encoders.{camera}.1.weight", TRANSPOSE),
        ("camera_{camera}/bias", "post_encoders.{camera}.1.bias"),
        ("norm_{camera}/scale", "post_encoders.{camera}.2.weight"),
        ("norm_{camera}/bias", "post_encoders.{camera}.2.bias"),
    ),
    image_encoder_prefix="image_encoder.image_enc_layers.",
    mlp_linear=rules(
        ("Dense_{i}/kernel", "net.{linear}.weight", TRANSPOSE),
        ("Dense_{i}/bias", "net.{linear}.bias"),
    ),
    mlp_norm=rules(
        ("LayerNorm_{i}/scale", "net.{norm}.weight"),
        ("LayerNorm_{i}/bias", "net.{norm}.bias"),
    ),
    actor_mlp="network.",
    actor_heads=rules(
        ("mean/kernel", "mean_layer.weight", TRANSPOSE),
        ("mean/bias", "mean_layer.bias"),
        ("log_std/kernel", "std_layer.weight", TRANSPOSE),
        ("log_std/bias", "std_layer.bias"),
    ),
    discrete_mlp="net.",
    critic_mlp="net.",
    output_layer=rules(
        ("Dense_0/kernel", "output_layer.weight", TRANSPOSE),
        ("Dense_0/bias", "output_layer.bias"),
    ),
    critic_head="critics.{k}.",
    log_alpha=rules(("log_alpha", "log_alpha", SCALAR)),
    encoder_modules=("encoder_critic.", "encoder_actor.", "critic_ensemble.encoder.",
                     "critic_target.encoder.", "actor.encoder.", "discrete_critic.encoder.",
                     "discrete_critic_target.encoder."),
    critic_ensemble="critic_ensemble.",
    critic_target="critic_target.",
    discrete_critic="discrete_critic.",
    discrete_critic_target="discrete_critic_target.",
    actor="actor.",
    push_actor="policy",
    push_discrete_critic="discrete_critic",
)

SAC_LAYOUTS = {"0.4": LEROBOT_0_4}
DEFAULT_LAYOUT = "0.4"


@dataclasses.dataclass(frozen=True)
class ClassifierLayout:
    """Where every hiljax reward-classifier parameter lives in LeRobot's `Classifier`."""

    version: str
    backbone: str  # the hub ResNet10 (also under every camera's encoder, same tensors)
    camera_backbone: str  # {camera}
    camera: Table  # {camera}: hiljax module name == LeRobot's key with dots as underscores
    head: Table
    spatial_size: tuple[int, int]  # LeRobot hard-codes SpatialLearnedEmbeddings(height, width)


# Shape facts of the hub ResNet10, so that an import checks every backbone tensor: stem width,
# stage widths (the last is the Classifier's feature_dim) and the total downsampling.
HUB_RESNET10_STEM_FILTERS = 64
HUB_RESNET10_STAGE_FILTERS = (64, 128, 256, 512)
HUB_RESNET10_DOWNSAMPLING = 32

LEROBOT_CLASSIFIER_0_4 = ClassifierLayout(
    version="0.4",
    backbone="encoder.",
    camera_backbone="encoders.{camera}.0.",
    camera=rules(
        ("encoder/camera_{camera}/spatial_kernel", "encoders.{camera}.1.kernel", SPATIAL),
        ("encoder/camera_{camera}/kernel", "encoders.{camera}.3.weight", TRANSPOSE),
        ("encoder/camera_{camera}/bias", "encoders.{camera}.3.bias"),
        ("encoder/norm_{camera}/scale", "encoders.{camera}.4.weight"),
        ("encoder/norm_{camera}/bias", "encoders.{camera}.4.bias"),
    ),
    head=rules(
        ("hidden/kernel", "classifier_head.0.weight", TRANSPOSE),
        ("hidden/bias", "classifier_head.0.bias"),
        ("hidden_norm/scale", "classifier_head.2.weight"),
        ("hidden_norm/bias", "classifier_head.2.bias"),
        ("logits/kernel", "classifier_head.4.weight", TRANSPOSE),
        ("logits/bias", "classifier_head.4.bias"),
    ),
    spatial_size=(4, 4),  # i.e. 97..128-pixel images into the ResNet10
)

CLASSIFIER_LAYOUTS = {"0.4": LEROBOT_CLASSIFIER_0_4}
