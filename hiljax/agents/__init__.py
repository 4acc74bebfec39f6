"""RL agents."""
