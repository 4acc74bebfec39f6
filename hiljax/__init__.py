"""hiljax: HIL-SERL in JAX/Flax."""
