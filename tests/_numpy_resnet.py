"""An independent float64 numpy forward pass of the Berkeley ResNet10, for checking the Flax one.

Written from the architecture description, not from hiljax code: im2col convolution with
explicit padding, group norm, max-pool padded with -inf. SAME padding is spelled out the way
XLA does it: total = max((ceil(n/s) - 1) * s + k - n, 0), the extra pixel on the high side.
"""

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _windows(x: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """(N, H, W, C) already padded -> (N, OH, OW, kh, kw, C) patches."""
    n, h, w, c = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = x[:, i:i + stride * (oh - 1) + 1:stride,
                                       j:j + stride * (ow - 1) + 1:stride, :]
    return cols


def conv(x: np.ndarray, kernel_hwio: np.ndarray, stride: int, pads=None) -> np.ndarray:
    kh, kw, cin, cout = kernel_hwio.shape
    if pads is None:  # SAME
        pads = (same_pads(x.shape[1], kh, stride), same_pads(x.shape[2], kw, stride))
    x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    cols = _windows(x, kh, kw, stride)
    n, oh, ow = cols.shape[:3]
    out = cols.reshape(n * oh * ow, kh * kw * cin) @ kernel_hwio.reshape(kh * kw * cin, cout)
    return out.reshape(n, oh, ow, cout)


def group_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, groups: int = 4,
               eps: float = 1e-5) -> np.ndarray:
    n, h, w, c = x.shape
    g = x.reshape(n, h, w, groups, c // groups)
    mean = g.mean(axis=(1, 2, 4), keepdims=True)
    var = ((g - mean) ** 2).mean(axis=(1, 2, 4), keepdims=True)
    return ((g - mean) / np.sqrt(var + eps)).reshape(n, h, w, c) * scale + bias


def max_pool_same(x: np.ndarray, k: int = 3, stride: int = 2) -> np.ndarray:
    pads = (same_pads(x.shape[1], k, stride), same_pads(x.shape[2], k, stride))
    x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=-np.inf)
    return _windows(x, k, k, stride).max(axis=(3, 4))


def _gn(x, p):
    return group_norm(x, np.float64(p["scale"]), np.float64(p["bias"]))


def block(x: np.ndarray, p: dict, stride: int) -> np.ndarray:
    y = conv(x, np.float64(p["Conv_0"]["kernel"]), stride)
    y = np.maximum(_gn(y, p["MyGroupNorm_0"]), 0)
    y = _gn(conv(y, np.float64(p["Conv_1"]["kernel"]), 1), p["MyGroupNorm_1"])
    if "conv_proj" in p:
        x = _gn(conv(x, np.float64(p["conv_proj"]["kernel"]), stride), p["norm_proj"])
    return np.maximum(x + y, 0)


def resnet10_forward(params: dict, images_uint8: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H/32, W/32, 512) float64, Berkeley ResNet10 semantics."""
    x = (images_uint8.astype(np.float64) / 255.0 - MEAN) / STD
    # The Berkeley stem pads (3, 3) explicitly (not SAME).
    x = conv(x, np.float64(params["conv_init"]["kernel"]), 2, pads=((3, 3), (3, 3)))
    x = np.maximum(_gn(x, params["norm_init"]), 0)
    x = max_pool_same(x)
    for i in range(4):
        x = block(x, params[f"ResNetBlock_{i}"], 1 if i == 0 else 2)
    return x
