import jax
import jax.numpy as jnp
import numpy as np

from hiljax.networks.encoder import CameraProjection, spatial_embed


def test_spatial_embed_matches_the_reference_formula():
    features = jax.random.normal(jax.random.key(0), (3, 2, 4, 4, 16))
    kernel = jax.random.normal(jax.random.key(1), (4, 4, 16, 8))
    expected = jnp.einsum("nbhwc,hwcf->nbcf", features, kernel).reshape(3, 2, 16 * 8)
    np.testing.assert_allclose(spatial_embed(features, kernel), expected, rtol=1e-5, atol=1e-5)


def test_folded_projection_equals_embedding_then_dense():
    features = jax.random.normal(jax.random.key(0), (5, 4, 4, 32))
    module = CameraProjection(latent_dim=12, num_features=8, dropout_rate=0.1)
    params = module.init(jax.random.key(1), features)["params"]
    folded = module.apply({"params": params}, features, train=False)
    two_step = spatial_embed(features, params["spatial_kernel"]) @ params["kernel"] + params["bias"]
    np.testing.assert_allclose(folded, two_step, rtol=1e-4, atol=1e-4)
    # Training mode drops embedding features: different from, but close in scale to, the folded path.
    trained = module.apply({"params": params}, features, train=True,
                           rngs={"dropout": jax.random.key(2)})
    assert trained.shape == folded.shape and not np.allclose(trained, folded)
