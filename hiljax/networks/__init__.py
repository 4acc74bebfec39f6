"""Flax modules: MLP, ResNet10, encoders, policy, critics."""
