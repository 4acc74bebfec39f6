"""One run of the system, shared by the processes: its config file (`TrainConfig`), its
directory (checkpoints, metrics) and the env an actor or an evaluation builds from it."""
