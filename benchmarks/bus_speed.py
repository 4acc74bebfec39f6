"""Servo-bus speed through the real driver, against the virtual SO-100 on a pseudo-terminal.

    python benchmarks/bus_speed.py [--quick]

A calibrated VirtualSO100 (first-order physics, served by a thread of this process) behind the
real FeetechMotorsBus, configured as LeRobot's connect leaves it (Return_Delay_Time 0). Figures:
  (a) sync reads per second of six Present_Position (normalised to degrees, as the env reads);
  (b) sync writes per second of six Goal_Position (the loop ends with one sync read, so every
      write has been served when the clock stops);
  (c) one ServoArm read + command cycle (read_joint_positions, send_joint_targets): median and
      p90, without and with max_relative_target (which reads once more before each command);
  (d) one env.step(small EE delta) of the real-arm stack: make_robot_env on
      configs/env_real_so100_template.json with realtime off, no cameras and no intervention
      device; median and p90, the bus operations in a step, and the share of a 10 Hz and a
      30 Hz period that the bus takes.
A pty has no baud rate: the measured figures are the driver's and the emulator's CPU time. A
real 1 Mbps bus adds 10 us per byte on the wire (8N1), which is computed apart, from the
packets' sizes, and labelled "computed". The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hiljax.envs.configs import load_env_config
from hiljax.envs.factory import make_robot_env
from hiljax.hardware.motors import feetech_table as table
from hiljax.hardware.robots import ARMS, ServoArm, ServoArmConfig
from hiljax.hardware.virtual import VirtualSO100

TEMPLATE = ROOT / "configs" / "env_real_so100_template.json"
ARM_TYPE = "so100_follower"
BAUD = 1_000_000
NUM_MOTORS = 6
POSITION_BYTES = 2  # Present_Position / Goal_Position are 2-byte registers
RATES_HZ = (10, 30)


# ---------------------------------------------------------------------------------------------
# Measuring.


def per_second(operation: Callable[[], object], seconds: float, warmup_s: float,
               drain: Callable[[], object] | None = None) -> float:
    """Calls per second over `seconds` after `warmup_s`; `drain()` runs inside the clock."""
    deadline = time.perf_counter() + warmup_s
    while time.perf_counter() < deadline:
        operation()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        operation()
        calls += 1
    if drain is not None:
        drain()
    return calls / (time.perf_counter() - start)


def latencies_ms(operation: Callable[[], object], count: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        operation()
    times = np.empty(count)
    for index in range(count):
        start = time.perf_counter()
        operation()
        times[index] = time.perf_counter() - start
    return times * 1e3


def summary(times_ms: np.ndarray) -> dict:
    return {"median_ms": round(float(np.median(times_ms)), 3),
            "p90_ms": round(float(np.percentile(times_ms, 90)), 3), "n": int(times_ms.size)}


def other_cores(start_busy: float, start_own: float, start_wall: float) -> float:
    """Cores used by OTHER processes since the start (the machine may be shared: noise)."""
    times, own = psutil.cpu_times(), psutil.Process().cpu_times()
    busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
    wall = time.perf_counter() - start_wall
    return max(0.0, ((busy - start_busy) - (own.user + own.system - start_own)) / wall)


def cpu_marks() -> tuple[float, float, float]:
    times, own = psutil.cpu_times(), psutil.Process().cpu_times()
    return (sum(times) - times.idle - getattr(times, "iowait", 0.0), own.user + own.system,
            time.perf_counter())


class BusMeter:
    """Counts and times a bus' sync reads and writes (wraps the instance's methods)."""

    def __init__(self, bus):
        self.reads = self.writes = 0
        self.seconds = 0.0
        for name in ("sync_read", "sync_write"):
            setattr(bus, name, self._timed(name, getattr(bus, name)))

    def _timed(self, name: str, method: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                if name == "sync_read":
                    self.reads += 1
                else:
                    self.writes += 1
        return timed

    def reset(self) -> None:
        self.reads = self.writes = 0
        self.seconds = 0.0


# ---------------------------------------------------------------------------------------------
# The wire at 1 Mbps (computed, not measured).


def wire_figures(num_motors: int = NUM_MOTORS, baud: int = BAUD) -> dict:
    """Bytes and wire time of one sync read / sync write of a 2-byte register on six motors."""
    ids = list(range(1, num_motors + 1))
    read_request = table.instruction_packet(
        table.BROADCAST_ID, table.SYNC_READ, bytes([56, POSITION_BYTES, *ids]))
    reply_bytes = (table.STATUS_OVERHEAD + POSITION_BYTES) * num_motors
    write_params = bytes([42, POSITION_BYTES]) + b"".join(
        bytes([i]) + table.encode_value(2047, POSITION_BYTES) for i in ids)
    write_request = table.instruction_packet(table.BROADCAST_ID, table.SYNC_WRITE, write_params)
    byte_us = 10 / baud * 1e6  # 8N1: ten bits a byte
    read_bytes = len(read_request) + reply_bytes
    return {"byte_us": byte_us, "sync_read_request_bytes": len(read_request),
            "sync_read_reply_bytes": reply_bytes, "sync_read_bytes": read_bytes,
            "sync_read_wire_us": read_bytes * byte_us,
            "sync_write_bytes": len(write_request),
            "sync_write_wire_us": len(write_request) * byte_us}


# ---------------------------------------------------------------------------------------------
# The figures.


def raw_bus_figures(arm: VirtualSO100, seconds: float, warmup_s: float) -> dict:
    bus = ARMS[ARM_TYPE].make_bus(arm.port, calibration=arm.calibration())
    bus.connect()
    try:
        with bus.torque_disabled():  # LeRobot's connect: return delay 0, then torque on
            bus.configure_motors()
        reads = per_second(lambda: bus.sync_read("Present_Position"), seconds, warmup_s)
        here = bus.sync_read("Present_Position")
        dither = itertools.cycle([0.5, -0.5])  # degrees about where the joints are

        def write():
            delta = next(dither)
            bus.sync_write("Goal_Position", {m: v + delta for m, v in here.items()})

        writes = per_second(write, seconds, warmup_s,
                            drain=lambda: bus.sync_read("Present_Position"))
    finally:
        bus.disconnect(disable_torque=True)
    return {"sync_reads_per_s": round(reads, 1), "sync_writes_per_s": round(writes, 1)}


def servo_arm_cycle(arm: VirtualSO100, calibration_dir: str, robot_id: str, count: int,
                    max_relative_target: float | None) -> dict:
    robot = ServoArm(ServoArmConfig(type=ARM_TYPE, port=arm.port, id=robot_id,
                                    calibration_dir=calibration_dir,
                                    max_relative_target=max_relative_target))
    robot.connect()
    sign = [1.0]

    def cycle():
        present = robot.read_joint_positions()
        sign[0] = -sign[0]
        robot.send_joint_targets(present + 0.5 * sign[0])

    try:
        return summary(latencies_ms(cycle, count, warmup=max(5, count // 10)))
    finally:
        robot.disconnect()


def env_step_figures(port: str, calibration_dir: str, steps: int, wire: dict) -> dict:
    cfg = load_env_config(TEMPLATE, [
        f"robot.port={port}", f"robot.calibration_dir={calibration_dir}",
        "robot.realtime=false", "wrapper.ee_action_space_params.control_mode=null",
        "wrapper.display_cameras=false", "wrapper.reset_time_s=0",
        # the bus alone: the template's cameras (and their crops) are a person's devices
        "robot.cameras=[]", "wrapper.crop_params_dict=null", "wrapper.resize_size=null"])
    env = make_robot_env(cfg)
    meter = BusMeter(env.unwrapped.robot.bus)
    try:
        env.reset(seed=0)
        times, bus_s, reads, writes = [], [], [], []
        for index in range(steps):
            action = np.array([0.05 if index % 2 else -0.05, 0.0, 0.0, 1.0], np.float32)
            action = action[:env.action_space.shape[0]]
            meter.reset()
            start = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            times.append(time.perf_counter() - start)
            bus_s.append(meter.seconds)
            reads.append(meter.reads)
            writes.append(meter.writes)
            if terminated or truncated:
                env.reset()
    finally:
        env.close()
    times_ms, bus_ms = np.array(times) * 1e3, np.array(bus_s) * 1e3
    reads_per_step, writes_per_step = float(np.median(reads)), float(np.median(writes))
    wire_ms = (reads_per_step * wire["sync_read_wire_us"]
               + writes_per_step * wire["sync_write_wire_us"]) / 1e3
    out = {"step": summary(times_ms), "bus_median_ms": round(float(np.median(bus_ms)), 3),
           "sync_reads_per_step": reads_per_step, "sync_writes_per_step": writes_per_step,
           "computed_wire_ms_per_step_1mbps": round(wire_ms, 3), "fps": cfg.fps}
    for hz in RATES_HZ:
        period_ms = 1e3 / hz
        out[f"bus_share_of_{hz}hz"] = round(float(np.median(bus_ms)) / period_ms, 4)
        out[f"step_share_of_{hz}hz"] = round(float(np.median(times_ms)) / period_ms, 4)
        out[f"computed_wire_share_of_{hz}hz"] = round(wire_ms / period_ms, 4)
    return out


def report(results: dict) -> None:
    wire, env = results["wire"], results["env_step"]
    print("Virtual SO-100 on a pty, real FeetechMotorsBus (no baud-rate limit on a pty)")
    print(f"  (a) sync read, 6 x Present_Position   {results['sync_reads_per_s']:9.1f} /s")
    print(f"  (b) sync write, 6 x Goal_Position     {results['sync_writes_per_s']:9.1f} /s")
    for key, label in (("servo_arm_cycle", "max_relative_target None"),
                       ("servo_arm_cycle_max_relative", "max_relative_target 10")):
        figure = results[key]
        print(f"  (c) ServoArm read+command ({label}): median {figure['median_ms']:.3f} ms, "
              f"p90 {figure['p90_ms']:.3f} ms (n={figure['n']})")
    step = env["step"]
    print(f"  (d) env.step (realtime off, no intervention device): median "
          f"{step['median_ms']:.3f} ms, p90 {step['p90_ms']:.3f} ms (n={step['n']}); "
          f"{env['sync_reads_per_step']:.0f} sync reads + {env['sync_writes_per_step']:.0f} "
          f"sync write per step, bus {env['bus_median_ms']:.3f} ms of it")
    for hz in RATES_HZ:
        print(f"      share of a {hz} Hz period ({1e3 / hz:.1f} ms): bus (pty) "
              f"{env[f'bus_share_of_{hz}hz']:.2%}, whole step {env[f'step_share_of_{hz}hz']:.2%}"
              f", computed 1 Mbps wire time {env[f'computed_wire_share_of_{hz}hz']:.2%}")
    print(f"COMPUTED, not measured: a real bus at {BAUD // 1000} kbps takes "
          f"{wire['byte_us']:.0f} us per byte (8N1)")
    print(f"  sync read of 6 motors: {wire['sync_read_request_bytes']} B request + "
          f"{wire['sync_read_reply_bytes']} B replies = {wire['sync_read_bytes']} B -> "
          f"{wire['sync_read_wire_us']:.0f} us on the wire (max "
          f"{1e6 / wire['sync_read_wire_us']:.0f} /s)")
    print(f"  sync write of 6 motors: {wire['sync_write_bytes']} B -> "
          f"{wire['sync_write_wire_us']:.0f} us on the wire (max "
          f"{1e6 / wire['sync_write_wire_us']:.0f} /s)")
    print(f"  env step: {env['computed_wire_ms_per_step_1mbps']:.2f} ms of wire time (add it to "
          "the pty figures; servo return delay 0 as LeRobot configures it)")
    print(f"Noise: other processes used {results['other_cores']:.2f} of {os.cpu_count()} cores "
          "meanwhile (the virtual servos run in a thread of this process, sharing its GIL)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about 2 s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    seconds, warmup_s = (0.5, 0.1) if args.quick else (2.0, 0.3)
    cycles, steps = (100, 60) if args.quick else (500, 400)
    cfg = load_env_config(TEMPLATE)
    robot_id, reset_pose = cfg.robot.id, cfg.wrapper.fixed_reset_joint_positions
    # Start where the env resets to, so the reset has nothing to wait for.
    arm = VirtualSO100(calibrated=True, pose=reset_pose)
    marks = cpu_marks()
    arm.start()
    try:
        with tempfile.TemporaryDirectory() as calibration_dir:
            arm.save_calibration(Path(calibration_dir) / f"{robot_id}.json")
            results = raw_bus_figures(arm, seconds, warmup_s)
            results["servo_arm_cycle"] = servo_arm_cycle(arm, calibration_dir, robot_id,
                                                         cycles, None)
            results["servo_arm_cycle_max_relative"] = servo_arm_cycle(
                arm, calibration_dir, robot_id, cycles, 10.0)
            results["wire"] = wire = wire_figures()
            results["env_step"] = env_step_figures(arm.port, calibration_dir, steps, wire)
    finally:
        arm.stop()
    results["other_cores"] = round(other_cores(*marks), 2)
    report(results)
    env, wire = results["env_step"], results["wire"]
    print(json.dumps({
        "benchmark": "bus_speed", "quick": args.quick, "cpu_count": os.cpu_count(),
        "transport": "pty (no baud limit)", "other_cores": results["other_cores"],
        "sync_reads_per_s": results["sync_reads_per_s"],
        "sync_writes_per_s": results["sync_writes_per_s"],
        "servo_arm_cycle_median_ms": results["servo_arm_cycle"]["median_ms"],
        "servo_arm_cycle_p90_ms": results["servo_arm_cycle"]["p90_ms"],
        "servo_arm_cycle_max_relative_median_ms":
            results["servo_arm_cycle_max_relative"]["median_ms"],
        "servo_arm_cycle_max_relative_p90_ms": results["servo_arm_cycle_max_relative"]["p90_ms"],
        "env_step_median_ms": env["step"]["median_ms"], "env_step_p90_ms": env["step"]["p90_ms"],
        "env_bus_median_ms": env["bus_median_ms"],
        "env_sync_reads_per_step": env["sync_reads_per_step"],
        "env_sync_writes_per_step": env["sync_writes_per_step"],
        **{k: env[k] for k in env if "share" in k},
        "computed_1mbps_sync_read_bytes": wire["sync_read_bytes"],
        "computed_1mbps_sync_read_us": round(wire["sync_read_wire_us"], 1),
        "computed_1mbps_sync_write_bytes": wire["sync_write_bytes"],
        "computed_1mbps_sync_write_us": round(wire["sync_write_wire_us"], 1),
        "computed_1mbps_env_step_wire_ms": env["computed_wire_ms_per_step_1mbps"],
    }))


if __name__ == "__main__":
    main()
