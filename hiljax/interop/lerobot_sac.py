"""hiljax's SAC parameters <-> LeRobot's SACPolicy state dicts (numpy only, no torch).

    state_dicts = push_state_dicts(config, actor_params, backbone)   # what LeRobot's learner pushes
    actor_params, backbone = push_from_state_dicts(config, state_dicts)
    state = policy_state_dict(config, params, target_params)        # SACPolicy.state_dict()
    params, target_params = policy_from_state_dict(config, state)

The names come from the tables in hiljax.interop.layouts (one per LeRobot version); this module
composes them for a config: which cameras and state branches exist, how many MLP layers, how many
critics. Two facts the tables cannot show:
- LeRobot's target critics share the online encoder (they have no encoder of their own); hiljax
  keeps a Polyak-averaged target encoder. Export writes LeRobot's structure (and hands the target
  encoder back separately, for an exact round trip); import without it starts the target encoder
  from the online one, as LeRobot's is.
- LeRobot concatenates camera latents in `input_features` order, hiljax in sorted key order; the
  configs written here list cameras sorted, and an import of cameras in another order is refused.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hiljax.config import SACConfig, is_image_key

from .layouts import (
    DEFAULT_LAYOUT,
    RESNET10_BLOCK,
    RESNET10_SHORTCUT,
    RESNET10_SHORTCUT_STAGES,
    RESNET10_STAGES,
    RESNET10_STEM,
    SAC_LAYOUTS,
    SACLayout,
)
from .tables import LayoutError, Rule, expand, flatten, from_lerobot, to_lerobot, unflatten

STATE_KEY_ORDER = ("observation.environment_state", "observation.state")  # LeRobot's and hiljax's


def layout_of(version: str = DEFAULT_LAYOUT) -> SACLayout:
    if version not in SAC_LAYOUTS:
        raise LayoutError(f"unknown LeRobot layout {version!r}; supported: {sorted(SAC_LAYOUTS)}")
    return SAC_LAYOUTS[version]


def module_name(key: str) -> str:
    """observation.images.front -> observation_images_front (Flax and LeRobot both do this)."""
    return key.replace(".", "_")


def check_supported(config: SACConfig) -> None:
    """What LeRobot 0.4's SACPolicy can express; anything else has no faithful translation."""
    if not config.shared_encoder:
        raise LayoutError("only shared_encoder=true policies move to and from LeRobot")
    extra = [k for k in config.input_features
             if not is_image_key(k) and k not in STATE_KEY_ORDER]
    if extra:
        raise LayoutError(f"LeRobot's SAC encoder has no branch for {extra}: only "
                          f"{list(STATE_KEY_ORDER)} and observation.images.*")
    if config.image_keys and config.vision_encoder_name != "resnet10":
        raise LayoutError("with cameras only the resnet10 backbone has a LeRobot counterpart "
                          f"(helper2424/resnet10), not {config.vision_encoder_name!r}")
    if config.num_discrete_actions is None:
        return
    if config.num_discrete_actions < 2:
        raise LayoutError("num_discrete_actions must be >= 2")


# ---------------------------------------------------------------------------------------------
# Rules for one config.


def _state_keys(config: SACConfig) -> list[str]:
    return [k for k in STATE_KEY_ORDER if k in config.input_features]


def resnet10_rules(hiljax_prefix: str, lerobot_prefix: str) -> list[Rule]:
    blocks = [{"b": b} for b in RESNET10_STAGES]
    shortcuts = [{"b": b} for b in RESNET10_SHORTCUT_STAGES]
    kw = {"hiljax_prefix": hiljax_prefix, "lerobot_prefix": lerobot_prefix}
    return (expand(RESNET10_STEM, [{}], **kw) + expand(RESNET10_BLOCK, blocks, **kw)
            + expand(RESNET10_SHORTCUT, shortcuts, **kw))


def _encoder_rules(config: SACConfig, layout: SACLayout, lerobot_prefix: str, *,
                   encoder: str, backbone: str) -> list[Rule]:
    branches = [{"feature": module_name(k), "branch": layout.state_branches[k]}
                for k in _state_keys(config)]
    cameras = [{"camera": module_name(k)} for k in config.image_keys]
    out = expand(layout.encoder_state, branches, hiljax_prefix=encoder,
                 lerobot_prefix=lerobot_prefix)
    out += expand(layout.encoder_camera, cameras, hiljax_prefix=encoder,
                  lerobot_prefix=lerobot_prefix)
    if config.image_keys:
        out += resnet10_rules(backbone, lerobot_prefix + layout.image_encoder_prefix)
    return out


def _mlp_rules(layout: SACLayout, kwargs, hiljax_prefix: str, lerobot_prefix: str,
               index: int | None = None) -> list[Rule]:
    layers = len(kwargs.hidden_dims)
    normed = layers if kwargs.activate_final else layers - 1
    kw = {"hiljax_prefix": hiljax_prefix, "lerobot_prefix": lerobot_prefix}
    out = expand(layout.mlp_linear, [{"i": i, "linear": 3 * i} for i in range(layers)], **kw)
    out += expand(layout.mlp_norm, [{"i": i, "norm": 3 * i + 1} for i in range(normed)], **kw)
    return _indexed(out, index)


def _indexed(table: list[Rule], index: int | None) -> list[Rule]:
    if index is None:
        return table
    return [Rule(f"{r.hiljax}#{index}", r.lerobot, r.transform) for r in table]


def actor_rules(config: SACConfig, layout: SACLayout, prefix: str = "", *,
                encoder: str = "encoder/", backbone: str = "backbone/",
                actor: str = "actor/") -> list[Rule]:
    """policy.actor: shared encoder, MLP, mean and std layers."""
    return (_encoder_rules(config, layout, prefix + "encoder.", encoder=encoder, backbone=backbone)
            + _mlp_rules(layout, config.actor_network_kwargs, actor + "MLP_0/",
                         prefix + layout.actor_mlp)
            + expand(layout.actor_heads, [{}], hiljax_prefix=actor, lerobot_prefix=prefix))


def discrete_critic_rules(config: SACConfig, layout: SACLayout, prefix: str = "", *,
                          encoder: str = "encoder/", backbone: str = "backbone/",
                          head: str = "discrete_critic/") -> list[Rule]:
    """policy.discrete_critic: shared encoder, MLP, output layer."""
    return (_encoder_rules(config, layout, prefix + "encoder.", encoder=encoder, backbone=backbone)
            + _mlp_rules(layout, config.discrete_critic_network_kwargs, head + "MLP_0/",
                         prefix + layout.discrete_mlp)
            + expand(layout.output_layer, [{}], hiljax_prefix=head, lerobot_prefix=prefix))


def critic_rules(config: SACConfig, layout: SACLayout, prefix: str, *, heads: str,
                 encoder: str, backbone: str) -> list[Rule]:
    """critic_ensemble / critic_target: shared encoder and one MLP + output layer per critic
    (slices of hiljax's stacked ensemble leaves)."""
    out = _encoder_rules(config, layout, prefix + "encoder.", encoder=encoder, backbone=backbone)
    for k in range(config.num_critics):
        head = prefix + layout.critic_head.format(k=k)
        out += _mlp_rules(layout, config.critic_network_kwargs, heads + "MLP_0/",
                          head + layout.critic_mlp, index=k)
        out += _indexed(expand(layout.output_layer, [{}], hiljax_prefix=heads,
                               lerobot_prefix=head), k)
    return out


# ---------------------------------------------------------------------------------------------
# The parameter push: {"policy": actor.state_dict(), "discrete_critic": ...}.


def push_rules(config: SACConfig, version: str = DEFAULT_LAYOUT) -> dict[str, list[Rule]]:
    check_supported(config)
    layout = layout_of(version)
    out = {layout.push_actor: actor_rules(config, layout)}
    if config.num_discrete_actions:
        out[layout.push_discrete_critic] = discrete_critic_rules(config, layout)
    return out


def _push_tree(actor_params: Mapping, backbone: Mapping | None) -> dict:
    tree = {k: v for k, v in actor_params.items() if k != "backbone" and flatten(v)}
    trained = actor_params.get("backbone")
    if trained or backbone:
        tree["backbone"] = trained if trained else backbone
    return tree


def push_state_dicts(config: SACConfig, actor_params: Mapping, backbone: Mapping | None = None,
                     *, version: str = DEFAULT_LAYOUT, cache: dict | None = None
                     ) -> dict[str, dict[str, np.ndarray]]:
    """What LeRobot's learner pushes to its actor, from what hiljax's learner publishes
    (`SACAgent.actor_parameters()`) and the frozen backbone. Both state dicts hold the very
    same encoder arrays, so a torch archive writer stores them once, as torch.save does.
    `cache` keeps the converted frozen backbone between pushes (it never changes)."""
    flat = flatten(_push_tree(actor_params, backbone))
    tables = push_rules(config, version)
    _require_all_used(flat, tables)
    frozen = "backbone" not in actor_params  # a trained backbone changes with every push
    memo = dict(cache) if cache is not None and frozen else {}
    out = {}
    for name, table in tables.items():
        used = {r.hiljax.partition("#")[0] for r in table}
        out[name] = to_lerobot({p: v for p, v in flat.items() if p in used}, table, memo=memo)
    if cache is not None and frozen:
        cache.update({p: v for p, v in memo.items() if p.startswith("backbone/")})
    return out


def _require_all_used(flat: Mapping, tables: Mapping[str, list[Rule]]) -> None:
    used = {r.hiljax.partition("#")[0] for table in tables.values() for r in table}
    unused = sorted(set(flat) - used)
    if unused:
        raise LayoutError(f"hiljax parameters with no LeRobot name: {', '.join(unused[:8])}")


def push_from_state_dicts(config: SACConfig, state_dicts: Mapping[str, Mapping],
                          *, version: str = DEFAULT_LAYOUT) -> tuple[dict, dict]:
    """(actor_params, frozen backbone) from a LeRobot push. The discrete critic is required
    when the config has a gripper: LeRobot's actor would silently keep a random one."""
    tables = push_rules(config, version)
    missing = sorted(set(tables) - set(state_dicts))
    if missing:
        raise LayoutError(f"LeRobot parameters without {missing} (a gripper head left random "
                          "is never acceptable)")
    flat: dict[str, np.ndarray] = {}
    for name, table in tables.items():
        part = from_lerobot(state_dicts[name], table, where=f"[{name!r}]")
        _merge_shared(flat, part, where=f"[{name!r}]")
    tree = unflatten(flat)
    backbone = tree.pop("backbone", {})
    tree.setdefault("discrete_critic", {})
    if not config.freeze_vision_encoder and backbone:
        tree["backbone"], backbone = backbone, {}
    return tree, backbone


def _merge_shared(flat: dict, part: Mapping, where: str) -> None:
    """Add `part`; a leaf both already hold (the shared encoder) must be equal in both."""
    for path, value in part.items():
        if path in flat and not np.array_equal(flat[path], value):
            raise LayoutError(f"{where}: the shared encoder's copies differ at {path}")
        flat[path] = value


# ---------------------------------------------------------------------------------------------
# The whole policy: SACPolicy.state_dict() (a pretrained model.safetensors).


def policy_rules(config: SACConfig, version: str = DEFAULT_LAYOUT) -> list[Rule]:
    """Rules over the tree {"params": agent params, "target": agent target params}."""
    check_supported(config)
    layout = layout_of(version)
    backbone = ("params/critic/backbone/" if not config.freeze_vision_encoder
                else "params/backbone/")
    shared = {"encoder": "params/critic/encoder/", "backbone": backbone}
    out = expand(layout.log_alpha, [{}], hiljax_prefix="params/temperature/")
    for prefix in layout.encoder_modules:
        out += _encoder_rules(config, layout, prefix, **shared)
    out += critic_rules(config, layout, layout.critic_ensemble,
                        heads="params/critic/ensemble/heads/", **shared)
    out += critic_rules(config, layout, layout.critic_target,
                        heads="target/critic/ensemble/heads/", **shared)
    if config.num_discrete_actions:
        out += discrete_critic_rules(config, layout, layout.discrete_critic,
                                     head="params/discrete_critic/", **shared)
        out += discrete_critic_rules(config, layout, layout.discrete_critic_target,
                                     head="target/discrete_critic/", **shared)
    out += actor_rules(config, layout, layout.actor, actor="params/actor/", **shared)
    return out


TARGET_ENCODER = "target/critic/encoder"  # hiljax-only: LeRobot's targets share the encoder


def policy_state_dict(config: SACConfig, params: Mapping, target_params: Mapping, *,
                      version: str = DEFAULT_LAYOUT) -> tuple[dict, dict]:
    """(SACPolicy.state_dict() as numpy, hiljax-only leaves). The shared encoder's keys all
    hold the same array object; the hiljax-only part is the Polyak target encoder."""
    flat = flatten({"params": _without_empty(params), "target": _without_empty(target_params)})
    hiljax_only = {p: v for p, v in flat.items() if p.startswith(TARGET_ENCODER + "/")}
    rest = {p: v for p, v in flat.items() if p not in hiljax_only}
    state = to_lerobot(rest, policy_rules(config, version), memo={})
    return state, {p: np.asarray(v, np.float32) for p, v in hiljax_only.items()}


def policy_from_state_dict(config: SACConfig, state: Mapping, hiljax_only: Mapping | None = None,
                           *, version: str = DEFAULT_LAYOUT) -> tuple[dict, dict]:
    """(params, target_params) from SACPolicy.state_dict(). `torch.compile`d critics
    (`_orig_mod.` in their keys, LeRobot's default use_torch_compile) are read as well."""
    state = {k.replace("._orig_mod.", "."): v for k, v in state.items()}
    flat = from_lerobot(state, policy_rules(config, version), where="SACPolicy state dict")
    encoder = {p: v for p, v in flat.items() if p.startswith("params/critic/encoder/")}
    target_encoder = {TARGET_ENCODER + p[len("params/critic/encoder"):]: v.copy()
                      for p, v in encoder.items()}
    target_encoder.update(hiljax_only or {})
    tree = unflatten({**flat, **target_encoder})
    params, target = tree["params"], tree["target"]
    params.setdefault("backbone", {})
    params.setdefault("discrete_critic", {})
    target.setdefault("discrete_critic", {})
    return params, target


def _without_empty(tree: Mapping) -> dict:
    return {k: _without_empty(v) if isinstance(v, Mapping) else v
            for k, v in tree.items() if not (isinstance(v, Mapping) and not flatten(v))}
