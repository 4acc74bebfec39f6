"""`TrainConfig`: one JSON file for a whole run (learner, actors, env, policy).

`python -m hiljax.train`, `python -m hiljax.learner` and `python -m hiljax.actor` all read it.
The policy sits at the top level and is shared by the learner and every actor, so the two can
never disagree about the networks; `output_dir` and `transport` at the top level also win over
the copies inside `learner` / `actor`. The defaults are the simulator's pick-and-lift run with
state observations (`configs/sim_pick_lift.json` is this file written out).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from hiljax.config import (
    ActorConfig,
    ActorLearnerConfig,
    ConfigError,
    CriticNetworkConfig,
    LearnerConfig,
    PolicyConfig,
    SACConfig,
    apply_overrides,
    from_dict,
    read_json_object,
    require_transport,
    to_dict,
)
from hiljax.envs.configs import HILSerlRobotEnvConfig, load_env_config
from transport.factory import NETWORK_KINDS

SIM_ENV_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "env_sim.json"


def sim_policy() -> SACConfig:
    """SAC for the sim's state observations; values of LeRobot's sim example where it has one."""
    return SACConfig(
        input_features={"observation.state": (9,), "observation.environment_state": (3,)},
        continuous_action_dim=3,
        num_discrete_actions=3,
        discount=0.97,
        temperature_init=0.01,
        utd_ratio=2,
        latent_dim=64,
        grad_clip_norm=10.0,
        policy_kwargs=PolicyConfig(std_max=5.0),
        critic_network_kwargs=CriticNetworkConfig(hidden_dims=(256, 256)),
        online_step_before_learning=200,
    )


def _default_env() -> HILSerlRobotEnvConfig:
    """The sim env, with the scripted person demonstrating the first 10 episodes."""
    if not SIM_ENV_CONFIG.exists():
        return HILSerlRobotEnvConfig()
    env = load_env_config(SIM_ENV_CONFIG)
    operator = dataclasses.replace(env.wrapper.sim_operator, demo_episodes=10)
    return dataclasses.replace(env, wrapper=dataclasses.replace(env.wrapper,
                                                                sim_operator=operator))


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    policy: SACConfig = dataclasses.field(default_factory=sim_policy)
    env: HILSerlRobotEnvConfig = dataclasses.field(default_factory=_default_env)
    output_dir: str = "outputs/sim_pick_lift"
    transport: str = "grpc"  # one of transport.factory.NETWORK_KINDS (processes talk over sockets)
    # Port 0: the OS picks a free one and the learner writes it to <output_dir>/learner_address.
    actor_learner_config: ActorLearnerConfig = ActorLearnerConfig(
        learner_port=0, policy_parameters_push_frequency=2.0)
    num_actors: int = 1
    learner: LearnerConfig = LearnerConfig(save_freq=5000, log_freq=50)
    # 20 env steps/s leaves the learner most of a 2-core machine (~1.5 UTD rounds per env step);
    # unthrottled, the sim outruns the learner ~6x and learns less per step.
    actor: ActorConfig = ActorConfig(fps=20.0)

    def __post_init__(self):
        if self.num_actors < 1:
            raise ConfigError("num_actors must be >= 1")
        require_transport(self.transport, NETWORK_KINDS)

    def learner_config(self) -> LearnerConfig:
        return dataclasses.replace(self.learner, policy=self.policy, output_dir=self.output_dir,
                                   transport=self.transport,
                                   actor_learner_config=self.actor_learner_config,
                                   max_actors=max(self.learner.max_actors, self.num_actors))

    def env_config(self, index: int = 0) -> HILSerlRobotEnvConfig:
        """Actor `index`'s env: its own scene and operator seeds, so actors differ."""
        env = self.env
        robot = dataclasses.replace(env.robot, seed=env.robot.seed + index)
        wrapper = env.wrapper
        if getattr(wrapper, "sim_operator", None) is not None:
            wrapper = dataclasses.replace(wrapper, sim_operator=dataclasses.replace(
                wrapper.sim_operator, seed=wrapper.sim_operator.seed + index))
        return dataclasses.replace(env, robot=robot, wrapper=wrapper)

    def actor_config(self, index: int = 0, learner_address: str | None = None) -> ActorConfig:
        spool_dir = self.actor.spool_dir
        if spool_dir is not None:  # each actor its own folder: one process per spool
            parent = Path(self.output_dir) / "spool" if spool_dir == "auto" else Path(spool_dir)
            spool_dir = str(parent / f"actor-{index}")
        return dataclasses.replace(self.actor, policy=self.policy, transport=self.transport,
                                   actor_learner_config=self.actor_learner_config,
                                   seed=self.actor.seed + index, spool_dir=spool_dir,
                                   learner_address=learner_address or self.actor.learner_address)


# Fields of the sections that the top level of a TrainConfig decides.
_OWNED_BY_TOP_LEVEL = {"learner": ("policy", "output_dir", "transport", "actor_learner_config"),
                       "actor": ("policy", "transport", "actor_learner_config")}


def _saved_form(config: TrainConfig) -> dict:
    data = to_dict(config)
    for section, fields in _OWNED_BY_TOP_LEVEL.items():
        for name in fields:
            data[section].pop(name)
    return data


def save_train_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(json.dumps(_saved_form(config), indent=2) + "\n")


def load_train_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """A TrainConfig JSON (or the sim defaults) plus dotted overrides; `policy` and `env`
    sub-objects may also name files ("env": "configs/env_sim.json")."""
    data: dict = _saved_form(TrainConfig())  # overrides apply on top of the defaults
    if path is not None:
        data = read_json_object(path)
    for section, fields in _OWNED_BY_TOP_LEVEL.items():
        for name in fields:
            if name in data.get(section, {}):
                raise ConfigError(f"{section}.{name}: set {name} at the top level of the file")
    if isinstance(data.get("env"), str):
        data["env"] = json.loads(Path(data["env"]).read_text())
    data = apply_overrides(data, list(overrides))
    env = data.pop("env", None)
    config = from_dict(TrainConfig, data)
    if env is not None:
        config = dataclasses.replace(config, env=from_dict(HILSerlRobotEnvConfig, env, "env"))
    return config


def check_env_matches_policy(observation_space, action_space, policy: SACConfig) -> None:
    """The env must produce exactly what the policy was configured for; say what differs."""
    spaces = getattr(observation_space, "spaces", {})
    got = {key: tuple(space.shape) for key, space in spaces.items()}
    want = dict(policy.input_features)
    if got != want:
        raise ConfigError(f"the env's observations {got} do not match policy.input_features "
                          f"{want}; fix the config's policy.input_features")
    if action_space.shape != (policy.action_dim,):
        raise ConfigError(f"the env's action shape {action_space.shape} does not match the "
                          f"policy's {policy.action_dim} (continuous {policy.continuous_action_dim}"
                          f" + {'1 gripper' if policy.num_discrete_actions else 'no gripper'})")
