"""Robot environments: HILSerlRobotEnv, wrappers, the MuJoCo robot, make_robot_env (numpy only)."""
