import os

# CPU only, everywhere; set before anything imports jax.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

# Property tests: a fixed example sequence in the suite (CI stays deterministic); run
# `HYPOTHESIS_PROFILE=explore pytest tests/transport/test_fuzz.py` to search with fresh randomness.
from hypothesis import settings

settings.register_profile("suite", derandomize=True, deadline=None)
settings.register_profile("explore", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))
