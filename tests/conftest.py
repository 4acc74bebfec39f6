import os

# CPU only, everywhere; set before anything imports jax.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
