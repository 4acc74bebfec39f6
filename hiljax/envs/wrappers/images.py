"""ImageCropResizeWrapper: crop each camera to a region of interest, then resize it.

`crop_params_dict` maps an image key (`observation.images.front`, or just the camera name
`front`) to (top, left, height, width) in pixels of the incoming frame; `resize_size` is the
(height, width) every listed image ends at (default 128 x 128, the reference's). Images stay
(H, W, 3) uint8; resizing uses area averaging when shrinking (no aliasing) and linear when
growing. With `resize_size` and no crop entry for a camera, that camera is only resized.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import cv2
import gymnasium as gym
import numpy as np

from hiljax.envs.wrappers._spaces import IMAGES_PREFIX, is_image_key, with_key

logger = logging.getLogger(__name__)

DEFAULT_RESIZE = (128, 128)
# A camera whose every channel is this flat is covered, unplugged or black (the reference warns).
FLAT_IMAGE_STD = 0.02 * 255


def resolve_image_key(key: str, image_keys: Sequence[str]) -> str:
    """`front` -> `observation.images.front` when that is an image key of the env."""
    if key in image_keys:
        return key
    if f"{IMAGES_PREFIX}{key}" in image_keys:
        return f"{IMAGES_PREFIX}{key}"
    raise ValueError(f"crop_params_dict: {key!r} is not an image of this env; "
                     f"images: {sorted(image_keys)}")


def crop_and_resize(frame: np.ndarray, crop: Sequence[int] | None,
                    size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (size[0], size[1], 3) uint8."""
    if crop is not None:
        top, left, height, width = (int(v) for v in crop)
        frame = frame[top: top + height, left: left + width]
    if frame.shape[:2] == tuple(size):
        return np.ascontiguousarray(frame)
    shrinking = frame.shape[0] >= size[0] and frame.shape[1] >= size[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(frame, (size[1], size[0]), interpolation=interpolation)


class ImageCropResizeWrapper(gym.ObservationWrapper):
    """See the module docstring."""

    def __init__(self, env, crop_params_dict: Mapping[str, Sequence[int]] | None = None,
                 resize_size: Sequence[int] | None = None):
        super().__init__(env)
        image_keys = [k for k in env.observation_space.spaces if is_image_key(k)]
        crops = {resolve_image_key(k, image_keys): tuple(v)
                 for k, v in (crop_params_dict or {}).items()}
        self.resize_size = tuple(resize_size) if resize_size is not None else DEFAULT_RESIZE
        # Only resize_size given: every image is resized; else only the cropped ones (reference).
        keys = image_keys if crop_params_dict is None else list(crops)
        self.crop_params_dict = {k: crops.get(k) for k in keys}
        space = env.observation_space
        for key, crop in self.crop_params_dict.items():
            self._check_crop(key, crop, space[key].shape)
            space = with_key(space, key, gym.spaces.Box(
                0, 255, (*self.resize_size, space[key].shape[-1]), dtype=np.uint8))
        self.observation_space = space
        self._warned: set[str] = set()

    @staticmethod
    def _check_crop(key: str, crop, shape) -> None:
        if crop is None:
            return
        if len(crop) != 4 or min(crop) < 0 or crop[2] <= 0 or crop[3] <= 0:
            raise ValueError(f"crop_params_dict[{key!r}] must be (top, left, height, width) with "
                             f"a positive height and width, got {crop}")
        top, left, height, width = crop
        if top + height > shape[0] or left + width > shape[1]:
            raise ValueError(f"crop_params_dict[{key!r}] = {crop} reaches outside the "
                             f"{shape[0]}x{shape[1]} image")

    def observation(self, observation):
        out = dict(observation)
        for key, crop in self.crop_params_dict.items():
            self._warn_if_flat(key, observation[key])
            out[key] = crop_and_resize(observation[key], crop, self.resize_size)
        return out

    def _warn_if_flat(self, key: str, frame: np.ndarray) -> None:
        """A covered or dead camera gives a flat frame; say so once per camera."""
        if key in self._warned:
            return
        sample = frame[::8, ::8].reshape(-1, frame.shape[-1]).astype(np.float32)
        if np.any(sample.std(axis=0) <= FLAT_IMAGE_STD):
            logger.warning("%s: a colour channel is flat; is the camera covered, unplugged or "
                           "in the dark?", key)
            self._warned.add(key)
