"""The MLP every SAC head is built from: Dense -> LayerNorm -> SiLU per layer (reference §2)."""

from collections.abc import Sequence

import flax.linen as nn
import jax

default_init = nn.initializers.xavier_uniform


class MLP(nn.Module):
    hidden_dims: Sequence[int]
    activate_final: bool = True  # apply LayerNorm + SiLU after the last layer too
    layer_norm_eps: float = 1e-5  # torch's default, which LeRobot's weights were trained with

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, width in enumerate(self.hidden_dims):
            x = nn.Dense(width, kernel_init=default_init())(x)
            if i + 1 < len(self.hidden_dims) or self.activate_final:
                x = nn.LayerNorm(epsilon=self.layer_norm_eps)(x)
                x = nn.silu(x)
        return x
