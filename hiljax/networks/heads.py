"""Policy and critic heads. They take the encoder's latent features, never raw observations."""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from .mlp import MLP

_LOG_2 = math.log(2.0)  # a Python float: no JAX work at import (the backend is chosen later)


class TanhGaussianPolicy(nn.Module):
    """Diagonal Gaussian in pre-tanh space; std = clip(exp(log_std), std_min, std_max).

    Returns (mean, std) of the pre-squash Gaussian; `sample_tanh_gaussian` and
    `tanh_gaussian_mode` turn them into actions.
    """

    action_dim: int
    hidden_dims: Sequence[int] = (256, 256)
    activate_final: bool = True
    std_min: float = 1e-5
    std_max: float = 10.0
    init_final: float = 0.05
    layer_norm_eps: float = 1e-5

    @nn.compact
    def __call__(self, latent: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = MLP(self.hidden_dims, self.activate_final, self.layer_norm_eps)(latent)
        head_init = nn.initializers.uniform(scale=2 * self.init_final)

        def shifted(key, shape, dtype=jnp.float32):  # uniform(-init_final, init_final)
            return head_init(key, shape, dtype) - self.init_final

        mean = nn.Dense(self.action_dim, kernel_init=shifted, bias_init=shifted, name="mean")(x)
        log_std = nn.Dense(self.action_dim, kernel_init=shifted, bias_init=shifted,
                           name="log_std")(x)
        std = jnp.clip(jnp.exp(log_std), self.std_min, self.std_max)
        return mean, std


def sample_tanh_gaussian(mean, std, key, squash: bool = True):
    """Reparameterised sample and its log-probability (with the tanh change of variables)."""
    noise = jax.random.normal(key, mean.shape, mean.dtype)
    pre_tanh = mean + std * noise
    log_prob = jnp.sum(-0.5 * noise**2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
    if not squash:
        return pre_tanh, log_prob
    # log(1 - tanh(u)^2) written stably: 2 * (log 2 - u - softplus(-2u)).
    log_det = 2.0 * (_LOG_2 - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))
    return jnp.tanh(pre_tanh), log_prob - jnp.sum(log_det, axis=-1)


def tanh_gaussian_mode(mean, squash: bool = True):
    return jnp.tanh(mean) if squash else mean


class CriticHead(nn.Module):
    """Q(z, a) for one critic: MLP over [latent, action] -> scalar (orthogonal output init)."""

    hidden_dims: Sequence[int] = (256, 256)
    activate_final: bool = True
    layer_norm_eps: float = 1e-5

    @nn.compact
    def __call__(self, latent: jax.Array, actions: jax.Array) -> jax.Array:
        x = jnp.concatenate([latent, actions], axis=-1)
        x = MLP(self.hidden_dims, self.activate_final, self.layer_norm_eps)(x)
        return nn.Dense(1, kernel_init=nn.initializers.orthogonal())(x)[..., 0]


class CriticEnsemble(nn.Module):
    """`num_critics` independent CriticHeads, vectorised with nn.vmap. Output (num_critics, batch)."""

    num_critics: int = 2
    hidden_dims: Sequence[int] = (256, 256)
    activate_final: bool = True
    layer_norm_eps: float = 1e-5

    @nn.compact
    def __call__(self, latent: jax.Array, actions: jax.Array) -> jax.Array:
        ensemble = nn.vmap(
            CriticHead,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        return ensemble(self.hidden_dims, self.activate_final, self.layer_norm_eps,
                        name="heads")(latent, actions)


class DiscreteCritic(nn.Module):
    """Q-values of the discrete gripper actions (0 close, 1 stay, 2 open): (batch, num_actions)."""

    num_actions: int = 3
    hidden_dims: Sequence[int] = (256, 256)
    activate_final: bool = True
    layer_norm_eps: float = 1e-5

    @nn.compact
    def __call__(self, latent: jax.Array) -> jax.Array:
        x = MLP(self.hidden_dims, self.activate_final, self.layer_norm_eps)(latent)
        return nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal())(x)
