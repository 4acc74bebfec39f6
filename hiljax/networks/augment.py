"""DrQ random-shift augmentation, inside jit: pad with edge pixels, crop back at a random offset."""

import jax
import jax.numpy as jnp


def random_shift(images: jax.Array, key: jax.Array, pad: int = 4) -> jax.Array:
    """images (N, H, W, C) of any dtype -> same shape; an independent shift per image."""
    if pad <= 0:
        return images
    n, height, width, channels = images.shape
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    offsets = jax.random.randint(key, (n, 2), 0, 2 * pad + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, channels))

    return jax.vmap(crop)(padded, offsets)


def random_shift_nd(images: jax.Array, key: jax.Array, pad: int = 4) -> jax.Array:
    """Like random_shift for any number of leading axes: (..., H, W, C)."""
    flat = images.reshape((-1,) + images.shape[-3:])
    return random_shift(flat, key, pad).reshape(images.shape)
