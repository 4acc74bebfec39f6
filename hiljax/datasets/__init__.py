"""LeRobot v3.0 datasets without torch: record episodes, read them back, turn them into
transitions for the offline replay buffer. numpy + pyarrow + PyAV only (no JAX)."""

from .format import (
    ACTION,
    DISCRETE_PENALTY,
    DONE,
    IS_INTERVENTION,
    REWARD,
    TRUNCATED,
    DatasetError,
)
from .reader import LeRobotDataset, read_dataset
from .writer import DatasetWriter

__all__ = ["ACTION", "DISCRETE_PENALTY", "DONE", "IS_INTERVENTION", "REWARD", "TRUNCATED",
           "DatasetError", "DatasetWriter", "LeRobotDataset", "read_dataset"]
