"""Env configs: the JSON files load, bad fields are refused with the field named, and the
factory builds (or clearly refuses) each robot type."""

import json
from pathlib import Path

import pytest

from hiljax.config import ConfigError, from_dict
from hiljax.envs.configs import EEActionSpaceConfig, HILSerlRobotEnvConfig, load_env_config
from hiljax.envs.factory import make_robot_env
from tests.envs.helpers import fake_config, replace_wrapper

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_are_the_references():
    cfg = HILSerlRobotEnvConfig()
    assert (cfg.fps, cfg.name, cfg.device, cfg.mode) == (10, "real_robot", "cuda", None)
    w = cfg.wrapper
    assert (w.control_time_s, w.reset_time_s, w.gripper_quantization_threshold) == (20.0, 5.0, 0.8)
    assert (w.use_gripper, w.display_cameras, w.crop_params_dict) == (False, False, None)
    assert w.ee_action_space_params.control_mode == "gamepad"
    hash(cfg)  # frozen all the way down


@pytest.mark.parametrize("name", ["env_sim.json", "env_real_so100_template.json",
                                  "env_real_so101_template.json", "env_record_sim.json"])
def test_shipped_configs_load(name):
    cfg = load_env_config(CONFIGS / name)
    assert cfg.wrapper.use_gripper and cfg.wrapper.fixed_reset_joint_positions is not None
    assert cfg.max_episode_steps == round(cfg.wrapper.control_time_s * cfg.fps)


def test_sim_config_is_state_only_with_ee_pose_and_environment_state():
    cfg = load_env_config(CONFIGS / "env_sim.json")
    assert cfg.robot.type == "sim_so100" and cfg.robot.cameras == ()
    assert cfg.wrapper.add_ee_pose_to_observation and cfg.robot.add_environment_state
    assert 10 <= cfg.wrapper.control_time_s <= 15


def test_overrides_with_the_lerobot_prefix():
    cfg = load_env_config(CONFIGS / "env_sim.json", ["--env.fps=20", "wrapper.use_gripper=false"])
    assert cfg.fps == 20 and not cfg.wrapper.use_gripper


@pytest.mark.parametrize("data, message", [
    ({"fsp": 10}, "unknown field"),
    ({"fps": "ten"}, "fps: expected an integer"),
    ({"wrapper": {"control_time_s": "long"}}, "wrapper.control_time_s: expected a number"),
    ({"wrapper": {"use_gripper": 1}}, "use_gripper: expected true/false"),
    ({"robot": {"type": "ur5"}}, "robot.type must be one of"),
    ({"wrapper": {"ee_action_space_params": {"bounds": {"min": [0, 0], "max": [1, 1]}}}},
     "bounds.min must be 3 numbers"),
    ({"wrapper": {"ee_action_space_params": {"bounds": {"min": [1, 0, 0], "max": [0, 1, 1]}}}},
     "min < max"),
    ({"wrapper": {"ee_action_space_params": {"control_mode": "joystick"}}}, "control_mode"),
    ({"wrapper": {"crop_params_dict": {"front": [0, 0, 10]}}}, "top, left, height, width"),
    ({"wrapper": {"fixed_reset_joint_positions": [0, 1]}}, "5 arm joints"),
    ({"robot": {"type": "gym_hil"}, "task": ""}, "gym_hil env id"),
    ({"mode": "play"}, "mode must be"),
])
def test_bad_fields_are_refused_naming_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(HILSerlRobotEnvConfig, data)


def test_a_bad_file_says_which(tmp_path):
    path = tmp_path / "env.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_env_config(path)
    path.write_text(json.dumps({"wrapper": {"gripper_penalty": "big"}}))
    with pytest.raises(ConfigError, match="gripper_penalty"):
        load_env_config(path)


def test_bounds_are_read_only_and_hashable():
    params = EEActionSpaceConfig()
    with pytest.raises(TypeError):
        params.bounds["min"] = (0, 0, 0)
    assert hash(params) == hash(EEActionSpaceConfig())


def test_real_so100_without_calibration_says_how_to_calibrate(tmp_path):
    cfg = load_env_config(CONFIGS / "env_real_so100_template.json",
                          [f"robot.calibration_dir={tmp_path}"])
    assert cfg.robot.is_real and cfg.robot.kinematics_table == "so100"
    with pytest.raises(ValueError, match="python -m hiljax.calibrate --robot so100_follower"):
        make_robot_env(cfg)


@pytest.mark.parametrize("override, message", [
    ("robot.port=null", "set robot.port"),
    ("robot.use_degrees=false", "use_degrees must be true"),
    ('robot.cameras=["front"]', "name their devices"),
    ('robot.cameras={"front": {"type": "opencv", "index_or_path": 0}}', "width, height and fps"),
    ('robot.cameras={"front": {"type": "file", "index_or_path": "v.mp4", "widht": 64}}',
     "unknown field"),
    ("robot.max_relative_target=0", "max_relative_target must be > 0"),
])
def test_real_arm_config_mistakes_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_env_config(CONFIGS / "env_real_so100_template.json", [override])


def test_leader_modes_need_the_leader_arm():
    with pytest.raises(ConfigError, match="control_mode leader needs teleop"):
        fake_config(control_mode="leader")
    with pytest.raises(ConfigError, match="teleop.type must be one of"):
        load_env_config(CONFIGS / "env_real_so101_template.json",
                        ['teleop={"type": "koch_leader", "port": "/dev/ttyACM1"}'])
    with pytest.raises(ConfigError, match="teleop.port"):
        load_env_config(CONFIGS / "env_real_so101_template.json", ['teleop={"id": "x"}'])


def test_a_classifier_path_without_a_callable_is_refused():
    cfg = fake_config()
    cfg = type(cfg)(**{**cfg.__dict__, "reward_classifier_pretrained_path": "/tmp/clf"})
    with pytest.raises(ValueError, match="reward_classifier="):
        make_robot_env(cfg)
    env = make_robot_env(cfg, reward_classifier=lambda obs: 0.0)
    env.reset()
    assert env.step(env.action_space.sample() * 0 + 1)[4]["reward_classifier_probability"] == 0.0


def test_the_fake_stack_is_built_in_the_reference_order():
    cfg = replace_wrapper(fake_config(cameras=("front",)), add_joint_velocity_to_observation=True,
                          add_current_to_observation=True, add_ee_pose_to_observation=True,
                          resize_size=(32, 32), gripper_penalty=-0.02)
    env = make_robot_env(cfg)
    names = []
    while hasattr(env, "env"):
        names.append(type(env).__name__)
        env = env.env
    assert names[::-1] == [
        "AddJointVelocityToObservation", "AddCurrentToObservation", "EEObservationWrapper",
        "ConvertToLeRobotObservation", "ImageCropResizeWrapper", "TimeLimitWrapper",
        "GripperActionWrapper", "GripperPenaltyWrapper", "EEActionWrapper", "ResetWrapper"]


def test_a_real_arm_takes_lerobots_camera_settings_and_a_sim_takes_names():
    cfg = load_env_config(CONFIGS / "env_real_so100_template.json", [
        'robot.cameras={"front": {"type": "opencv", "index_or_path": "/dev/video4", "width": 640,'
        ' "height": 480, "fps": 30}}'])
    assert cfg.robot.camera_names == ("front",)
    assert cfg.robot.cameras["front"].index_or_path == "/dev/video4"
    hash(cfg)  # still frozen all the way down
    with pytest.raises(ConfigError, match="renders its own cameras"):
        load_env_config(CONFIGS / "env_sim.json",
                        ['robot.cameras={"front": {"type": "opencv", "index_or_path": 0}}'])
