"""Real robot hardware, numpy only (no JAX): where the drivers live.

    motors/    Feetech and Dynamixel servo buses, LeRobot-compatible calibration
    cameras/   OpenCV / RealSense / video-file / simulated cameras
    robots/    follower and leader arms (so100, so101, koch, moss) and their registry
    virtual/   a servo emulator behind a pseudo-terminal, for tests without an arm

Nothing is here yet: `robot.type` values for real arms are refused with a clear error until the
drivers land (see the envs' robot registry).
"""
