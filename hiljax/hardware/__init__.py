"""Real robot hardware, numpy only (no JAX): the drivers a real arm runs.

    motors/    Feetech (protocol 0) and Dynamixel (protocol 2.0) servo buses over pyserial,
               LeRobot's register names, calibration files and normalisation
    cameras/   OpenCV, RealSense, video-file and simulated cameras (a thread keeps the newest
               frame)
    robots/    the arms as data (SO-100/101, Moss, Koch; followers and leaders) and ServoArm, the
               `Robot` of hiljax.envs on a servo bus
    virtual/   a virtual SO-100: STS3215 servos behind a pseudo-terminal, for trying everything
               without an arm
"""
