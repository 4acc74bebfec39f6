"""Kinematics: FK against the reference's formulas, Jacobians against finite differences, IK
success rates on random reachable targets, unreachable and singular targets, custom arms."""

import numpy as np
import pytest

from hiljax.kinematics import (
    FRAMES,
    ROBOT_LINK_ORIGINS,
    ArmGeometry,
    IKOptions,
    RobotKinematics,
    adjoint,
    invert_transform,
    pose_difference_se3,
    rodrigues_rotation,
    rotation_vector,
    se3_error,
)

ARMS = ("so100", "koch", "moss")
SELF_TEST_JOINTS = np.array([10.0, 20.0, 30.0, -10.0, 5.0, 0.0])


@pytest.fixture(scope="module", params=ARMS)
def arm(request):
    return RobotKinematics(request.param)


def random_joints(kin, rng, n):
    low, high = kin.joint_limits_deg.T
    return rng.uniform(low, high, size=(n, 5))


# --------------------------------------------------------------------------- FK


def _reference_fk(origins, joints_deg, frame):
    """The reference's model written out from reference_facts section 5, independently of the
    module: screw axes from the table's formulas, in the base frame, then the world offset."""
    m = {k: np.asarray(v, float) for k, v in origins.items()}
    h, f, w, g = m["humerus"], m["forearm"], m["wrist"], m["gripper"]
    screws = [[0, 0, -1, 0, 0, 0], [0, -1, 0, h[2], 0, -h[0]], [0, 1, 0, -f[2], 0, f[0]],
              [0, 1, 0, -w[2], 0, w[0]], [1, 0, 0, 0, g[2], -g[1]]]
    count = {"base": 0, "shoulder": 1, "humerus": 2, "forearm": 3, "wrist": 4, "gripper": 5,
             "gripper_tip": 5}[frame]
    pose = np.eye(4)
    pose[:3, 3] = m["base"]
    for screw, angle in zip(screws[:count], np.deg2rad(joints_deg[:count])):
        pose = pose @ _twist_exp(np.asarray(screw, float), angle)
    # The reference's frames: link origin + a constant centroid offset, then a frame rotation.
    offsets = {"base": (0, 0.015, 0), "shoulder": (-0.017, 0, 0.0235), "humerus": (0.0475, 0, 0),
               "forearm": (0.036, 0, 0), "wrist": (0.0035, -0.002, 0), "gripper": (0.07, 0, 0),
               "gripper_tip": (0.12, 0, 0)}
    link = "gripper" if frame == "gripper_tip" else frame
    home = np.eye(4)
    home[:3, 3] = np.asarray(offsets[frame]) + (m.get(link, 0) if link != "base" else 0)
    rotations = {"base": [[0, 0, 1], [1, 0, 0], [0, 1, 0]],
                 "wrist": [[0, -1, 0], [1, 0, 0], [0, 0, 1]],
                 "gripper": [[1, 0, 0], [0, 0, 1], [0, -1, 0]]}
    home[:3, :3] = rotations.get(link, np.eye(3))
    return pose @ home


def _twist_exp(screw, t):
    w, v = screw[:3], screw[3:]
    w_hat = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
    out = np.eye(4)
    out[:3, :3] = np.eye(3) + np.sin(t) * w_hat + (1 - np.cos(t)) * w_hat @ w_hat
    out[:3, 3] = (np.eye(3) * t + (1 - np.cos(t)) * w_hat + (t - np.sin(t)) * w_hat @ w_hat) @ v
    return out


def test_fk_matches_the_reference_formulas_for_every_frame(arm):
    rng = np.random.default_rng(1)
    origins = ROBOT_LINK_ORIGINS[arm.robot_type]
    for joints in [SELF_TEST_JOINTS[:5], np.zeros(5), *random_joints(arm, rng, 20)]:
        for frame in FRAMES:
            np.testing.assert_allclose(arm.fk(joints, frame), _reference_fk(origins, joints, frame),
                                       atol=1e-12, err_msg=f"{arm.robot_type} {frame}")


def test_gripper_tip_at_zero_pose_is_the_gripper_origin_plus_12cm_along_x(arm):
    origins = ROBOT_LINK_ORIGINS[arm.robot_type]
    tip = arm.fk_gripper_tip(np.zeros(6))
    expected = np.add(origins["base"], origins["gripper"]) + [0.12, 0, 0]
    np.testing.assert_allclose(tip[:3, 3], expected)
    np.testing.assert_allclose(tip[:3, 0], [1, 0, 0])  # the gripper x axis points forward


def test_named_fk_methods_batched_fk_and_fk_all_agree(arm):
    rng = np.random.default_rng(2)
    joints = np.c_[random_joints(arm, rng, 50), rng.uniform(0, 100, 50)]  # with a jaw column
    every = arm.fk_all(joints)
    for frame in FRAMES[1:]:
        batched = getattr(arm, f"fk_{frame}")(joints)
        assert batched.shape == (50, 4, 4)
        singles = np.stack([arm.fk(q[:5], frame) for q in joints])
        np.testing.assert_allclose(batched, singles, atol=1e-14)
        np.testing.assert_allclose(every[frame], batched, atol=1e-14)
    np.testing.assert_allclose(arm.fk_base(), every["base"][0])
    rot = batched[:, :3, :3]
    np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), np.broadcast_to(np.eye(3), rot.shape),
                               atol=1e-12)


# --------------------------------------------------------------------------- Jacobians


def _finite_difference(kin, joints, frame, step_deg=1e-4):
    """dT/dq per radian by central differences, for each joint: (5, 4, 4)."""
    out = []
    for i in range(5):
        delta = np.zeros(5)
        delta[i] = step_deg
        out.append((kin.fk(joints + delta, frame) - kin.fk(joints - delta, frame))
                   / np.deg2rad(2 * step_deg))
    return np.stack(out)


def _vee(twist_matrix):
    return np.r_[twist_matrix[2, 1], twist_matrix[0, 2], twist_matrix[1, 0], twist_matrix[:3, 3]]


@pytest.mark.parametrize("frame", ["gripper_tip", "gripper", "wrist", "humerus"])
def test_analytic_jacobians_match_finite_differences(arm, frame):
    rng = np.random.default_rng(3)
    for joints in random_joints(arm, rng, 5):
        pose = arm.fk(joints, frame)
        inverse = invert_transform(pose)
        np.testing.assert_allclose(inverse @ pose, np.eye(4), atol=1e-14)
        d_pose = _finite_difference(arm, joints, frame)
        space = np.stack([_vee(d @ inverse) for d in d_pose], axis=1)  # [w; v], per radian
        body = np.stack([_vee(inverse @ d) for d in d_pose], axis=1)
        np.testing.assert_allclose(arm.space_jacobian(joints, frame), space, atol=1e-7)
        np.testing.assert_allclose(arm.body_jacobian(joints, frame), body, atol=1e-7)
        np.testing.assert_allclose(adjoint(pose) @ body, space, atol=1e-7)  # J_s = Ad_T J_b


def test_compute_jacobian_keeps_the_reference_meaning(arm):
    """Rows [d position; d rotation vector] per DEGREE, as the reference's finite differences."""
    joints = SELF_TEST_JOINTS
    h = 1e-4
    expected = np.stack([pose_difference_se3(arm.fk_gripper(joints[:5] + h * e),
                                             arm.fk_gripper(joints[:5] - h * e)) / (2 * h)
                         for e in np.eye(5)], axis=1)
    np.testing.assert_allclose(arm.compute_jacobian(joints), expected, atol=1e-9)
    np.testing.assert_allclose(arm.compute_positional_jacobian(joints, arm.fk_gripper),
                               expected[:3], atol=1e-9)
    # 5 values keep the wrist roll (the reference dropped the last value whatever the length).
    np.testing.assert_allclose(arm.compute_jacobian(joints[:5]), expected, atol=1e-9)
    tip = arm.compute_jacobian(joints, fk_func=arm.fk_gripper_tip)
    assert tip.shape == (6, 5) and not np.allclose(tip, expected)


# --------------------------------------------------------------------------- IK


def test_reference_self_test_ik_from_zeros_within_1cm(arm):
    target = arm.fk_gripper(SELF_TEST_JOINTS)
    start = np.zeros(6)
    joints = arm.ik(start, target)
    assert joints.shape == (6,) and np.all(start == 0)  # the caller's array is not modified
    assert np.linalg.norm(arm.fk_gripper(joints)[:3, 3] - target[:3, 3]) < 0.01
    result = arm.solve_ik(start, target, frame="gripper")
    assert result.converged and result.position_error < 1e-4 and result.iterations < 10


def test_position_ik_converges_on_1000_random_reachable_targets(arm):
    """Start within +-25 degrees of a joint vector that reaches the target, as a controller's
    current joints would be. From the zero pose (arm stretched: a poor start) the rate is lower;
    retrying from random starts recovers most of the rest."""
    rng = np.random.default_rng(4)
    low, high = arm.joint_limits_deg.T
    truth = random_joints(arm, rng, 1000)
    targets = arm.fk_gripper_tip(truth)[:, :3, 3]
    near = np.clip(truth + rng.uniform(-25, 25, truth.shape), low, high)
    result = arm.solve_ik(near, targets)
    reached = arm.fk_gripper_tip(result.joints)[:, :3, 3]
    errors = np.linalg.norm(reached - targets, axis=1)
    np.testing.assert_allclose(errors, result.position_error, atol=1e-12)
    assert np.mean(errors < 1e-3) >= 0.99
    assert np.all(result.converged == (errors <= 1e-4))
    assert np.all((result.joints >= low) & (result.joints <= high))

    zero = arm.solve_ik(np.zeros_like(truth), targets)
    assert np.mean(zero.position_error < 1e-3) >= 0.6
    retried = arm.solve_ik(np.zeros_like(truth), targets, options=IKOptions(restarts=4))
    assert np.mean(retried.position_error < 1e-3) >= 0.95


def test_full_pose_ik_converges_on_random_reachable_poses(arm):
    rng = np.random.default_rng(5)
    low, high = arm.joint_limits_deg.T
    truth = random_joints(arm, rng, 300)
    targets = arm.fk_gripper_tip(truth)
    near = np.clip(truth + rng.uniform(-25, 25, truth.shape), low, high)
    result = arm.solve_ik(near, targets, position_only=False)
    assert np.mean(result.converged) >= 0.99
    error = se3_error(targets, arm.fk_gripper_tip(result.joints))[result.converged]
    assert np.all(np.linalg.norm(error[:, :3], axis=1) <= 1e-4)
    assert np.all(np.linalg.norm(error[:, 3:], axis=1) <= 1e-3)


def test_batch_ik_equals_one_solve_at_a_time(arm):
    rng = np.random.default_rng(6)
    truth = random_joints(arm, rng, 10)
    start = np.clip(truth + 20, *arm.joint_limits_deg.T)
    targets = arm.fk_gripper_tip(truth)
    batch = arm.solve_ik(start, targets, position_only=False)
    for i in range(10):
        one = arm.solve_ik(start[i], targets[i], position_only=False)
        np.testing.assert_allclose(one.joints, batch.joints[i], atol=1e-9)
        assert one.converged == batch.converged[i] and one.iterations == batch.iterations[i]


@pytest.mark.parametrize("target", [(1.0, 0.0, 0.07), (0.0, -0.8, 0.3), (-0.5, 0.5, 0.5),
                                    (0.1, 0.0, 1.5), (0.3, 0.2, -0.6)])
def test_unreachable_target_returns_the_closest_pose_not_converged(target):
    kin = RobotKinematics("so100")
    samples = kin.fk_gripper_tip(random_joints(kin, np.random.default_rng(7), 20000))[:, :3, 3]
    closest_sampled = np.min(np.linalg.norm(samples - target, axis=1))
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        result = kin.solve_ik(np.zeros(5), np.asarray(target))
    assert not result.converged and np.all(np.isfinite(result.joints))
    reached = kin.fk_gripper_tip(result.joints)[:3, 3]
    assert result.position_error == pytest.approx(np.linalg.norm(reached - target))
    assert result.position_error <= closest_sampled + 1e-3


def test_joint_limits_bind_and_can_be_overridden():
    kin = RobotKinematics("so100", joint_limits={"shoulder_pan": (-10.0, 10.0)})
    assert kin.joint_limits_deg[0].tolist() == [-10.0, 10.0]
    assert kin.joint_limits_deg[4].tolist() == [-180.0, 180.0]  # the rest keep their defaults
    target = RobotKinematics("so100").fk_gripper_tip([45, 30, 60, 0, 0])
    result = kin.solve_ik(np.zeros(5), target)
    assert not result.converged and result.joints[0] == pytest.approx(10.0)
    with pytest.raises(ValueError):
        RobotKinematics("so100", joint_limits={"elbow": (0, 1)})
    with pytest.raises(ValueError):
        RobotKinematics("so100", joint_limits={"elbow_flex": (10, -10)})


def test_each_iteration_respects_the_step_limit():
    kin = RobotKinematics("koch")
    target = kin.fk_gripper_tip([60, 80, 100, 30, 0])
    one_step = kin.solve_ik(np.zeros(5), target, position_only=False,
                            options=IKOptions(max_iterations=1, max_step_deg=2.0))
    assert one_step.iterations == 1 and not one_step.converged
    assert np.max(np.abs(one_step.joints)) == pytest.approx(2.0)


def _singular_configurations(kin):
    low, high = kin.joint_limits_deg.T
    # Tip on the pan axis: pan moves nothing. koch's and moss's gripper sits off the arm's
    # plane (y = -1 mm, 13 mm), so their tip only gets that close to the axis.
    on_pan_axis = kin.solve_ik([0, 60, 90, 0, 0], np.array([0.0, 0.0, 0.3]))
    gripper_y = abs(ROBOT_LINK_ORIGINS[kin.robot_type]["gripper"][1])
    assert on_pan_axis.position_error == pytest.approx(gripper_y, abs=1e-3)
    return [np.zeros(5),                          # stretched forward
            np.array([0, 90, 0, 0, 0]),           # stretched straight up
            np.array([0, 90, -90, 90, 0]),        # forearm and gripper stacked vertically
            on_pan_axis.joints, low, high, np.array([30, 190, 170, 110, 180])]


@pytest.mark.parametrize("robot_type", ARMS)
def test_no_nan_at_singular_configurations(robot_type):
    kin = RobotKinematics(robot_type)
    for joints in _singular_configurations(kin):
        pose = kin.fk_gripper_tip(joints)
        moves = 0.05 * np.vstack([np.eye(3), -np.eye(3)])
        targets = [pose] + [pose @ _translation(d) for d in moves]
        targets.append(_translation([2.0, 0.0, 0.0]) @ pose)
        with np.errstate(divide="raise", over="raise", invalid="raise"):
            for position_only in (True, False):
                results = kin.solve_ik(np.tile(joints, (len(targets), 1)), np.stack(targets),
                                       position_only=position_only)
                assert np.all(np.isfinite(results.joints))
                assert np.all(np.isfinite(results.position_error))
                assert results.converged[0] and results.iterations[0] == 0
                assert not results.converged[-1]
            assert np.all(np.isfinite(kin.space_jacobian(joints)))


def _translation(xyz):
    out = np.eye(4)
    out[:3, 3] = xyz
    return out


# --------------------------------------------------------------------------- custom arms, inputs


def test_user_supplied_table_reproduces_so100():
    table = {"base": [0, 0, 0.02], "humerus": [0.031, 0, 0.072], "forearm": [0.143, 0, 0.044],
             "wrist": [0.278, 0, 0.050], "gripper": [0.320, 0, 0.050]}  # shoulder defaults to 0
    custom = RobotKinematics.from_link_origins(table, name="my_arm")
    so100 = RobotKinematics("so100")
    joints = random_joints(so100, np.random.default_rng(8), 30)
    for frame in FRAMES:
        np.testing.assert_allclose(custom.fk(joints, frame), so100.fk(joints, frame), atol=1e-15)
    target = so100.fk_gripper(SELF_TEST_JOINTS)
    np.testing.assert_allclose(custom.ik(np.zeros(6), target), so100.ik(np.zeros(6), target))
    # LeRobot later negated shoulder_lift for every arm: one field, no code.
    flipped = RobotKinematics(ArmGeometry(table, joint_signs=(1, -1, 1, 1, 1)))
    negated = joints * [1, -1, 1, 1, 1]
    np.testing.assert_allclose(flipped.fk_gripper_tip(negated), so100.fk_gripper_tip(joints),
                               atol=1e-15)
    with pytest.raises(ValueError, match="wrist"):
        RobotKinematics.from_link_origins({k: v for k, v in table.items() if k != "wrist"})


def test_inputs_are_checked():
    kin = RobotKinematics("so100")
    with pytest.raises(ValueError):
        RobotKinematics("ur5")
    with pytest.raises(ValueError):
        kin.fk_gripper_tip(np.zeros(4))
    with pytest.raises(ValueError):
        kin.fk_gripper_tip([0, np.nan, 0, 0, 0])
    with pytest.raises(ValueError):
        kin.solve_ik(np.zeros(5), np.zeros(3), position_only=False)  # a pose is needed
    with pytest.raises(ValueError):
        kin.ik(np.zeros(6), np.eye(4), fk_func=lambda q: np.eye(4))
    with pytest.raises(ValueError):
        kin.ik(np.zeros(6), np.eye(4), fk_func=kin.fk_all)
    with pytest.raises(ValueError):
        kin.solve_ik(np.zeros(5), np.zeros(3), frame="base")
    jaw = kin.solve_ik([0, 0, 0, 0, 0, 42.0], kin.fk_gripper_tip(SELF_TEST_JOINTS)).joints
    assert jaw[5] == 42.0


# --------------------------------------------------------------------------- SE(3) helpers


def test_rotation_vector_inverts_rodrigues_at_every_angle():
    rng = np.random.default_rng(9)
    axes = rng.normal(size=(400, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.r_[0.0, 1e-12, 1e-7, 1e-3, np.pi - 1e-2, np.pi - 1e-6, np.pi - 1e-12, np.pi,
                   rng.uniform(0, np.pi, 392)]
    recovered = rotation_vector(rodrigues_rotation(axes, angles))
    expected = axes * angles[:, None]
    # At exactly pi, w and -w are the same rotation.
    flip = np.sum(recovered * expected, axis=1) < 0
    recovered[flip & (angles > np.pi - 1e-6)] *= -1
    np.testing.assert_allclose(recovered, expected, atol=1e-7)


def test_se3_error_is_target_minus_current_in_the_world_frame():
    current = np.eye(4)
    target = np.eye(4)
    target[:3, :3] = rodrigues_rotation(np.array([0.0, 0.0, 1.0]), 0.3)
    target[:3, 3] = [0.1, -0.2, 0.3]
    np.testing.assert_allclose(se3_error(target, current), [0.1, -0.2, 0.3, 0, 0, 0.3], atol=1e-15)


def test_one_start_solves_a_batch_of_targets_and_vice_versa():
    kin = RobotKinematics("so100")
    truth = random_joints(kin, np.random.default_rng(10), 8)
    targets = kin.fk_gripper_tip(truth)[:, :3, 3]
    start = np.r_[truth[0] + 5, 7.0]  # with a jaw value
    many = kin.solve_ik(start, targets)
    assert many.joints.shape == (8, 6) and np.all(many.joints[:, 5] == 7.0)
    for i in (0, 5):
        np.testing.assert_allclose(many.joints[i], kin.solve_ik(start, targets[i]).joints)
    starts = truth[2] + np.random.default_rng(11).uniform(-10, 10, (8, 5))
    same = kin.solve_ik(starts, targets[2])
    assert same.joints.shape == (8, 5) and np.all(same.converged)
    with pytest.raises(ValueError, match="batch sizes"):
        kin.solve_ik(starts[:3], targets[:2])
