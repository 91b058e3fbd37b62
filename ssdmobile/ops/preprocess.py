"""Image resizing that reproduces TensorFlow's, so imported TF detectors see the pixels they were
trained on. Plain tensor code (index_select and lerps) that every exporter can trace."""

from __future__ import annotations

import torch
from torch import Tensor


def _axis_weights(
    in_size: int, out_size: int, half_pixel_centers: bool, device
) -> tuple[Tensor, Tensor, Tensor]:
    # TF's compute_interpolation_weights, in float32 like TF, so the lerp factors match bit for bit.
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    dst = torch.arange(out_size, dtype=torch.float32)
    src = (dst + 0.5) * scale - 0.5 if half_pixel_centers else dst * scale
    floor = torch.floor(src)
    lower = floor.clamp(min=0).long()
    upper = torch.ceil(src).clamp(max=in_size - 1).long()
    lerp = src - floor
    return lower.to(device), upper.to(device), lerp.to(device)


def resize_tf1_bilinear(
    x: Tensor, size: tuple[int, int], half_pixel_centers: bool = False
) -> Tensor:
    """TF `ResizeBilinear(align_corners=False, half_pixel_centers=...)` on float [N, C, H, W].

    The TF1 default (half_pixel_centers=False) samples source pixel `dst * in / out` with no half
    pixel offset, which shifts the image by up to half a source pixel compared to
    `F.interpolate(mode="bilinear")`; TF1-trained detectors expect that shift.
    Like TF, rows are interpolated first from horizontally interpolated values."""
    in_h, in_w = int(x.shape[-2]), int(x.shape[-1])
    out_h, out_w = int(size[0]), int(size[1])
    top, bottom, y_lerp = _axis_weights(in_h, out_h, half_pixel_centers, x.device)
    left, right, x_lerp = _axis_weights(in_w, out_w, half_pixel_centers, x.device)
    x_lerp = x_lerp.to(x.dtype)
    y_lerp = y_lerp.to(x.dtype).view(-1, 1)

    rows_top = x.index_select(-2, top)
    rows_bottom = x.index_select(-2, bottom)

    def horizontal(rows: Tensor) -> Tensor:
        lv, rv = rows.index_select(-1, left), rows.index_select(-1, right)
        return lv + (rv - lv) * x_lerp

    t, b = horizontal(rows_top), horizontal(rows_bottom)
    return t + (b - t) * y_lerp


def tf_inception_preprocess(image_uint8_nchw: Tensor, size: tuple[int, int] = (300, 300)) -> Tensor:
    """uint8 [N, 3, H, W] RGB -> float in [-1, 1], resized like the TF Object Detection API's
    SSD MobileNet graphs (`Preprocessor`: ResizeBilinear, then x * 2/255 - 1)."""
    x = resize_tf1_bilinear(image_uint8_nchw.float(), size)
    return x * (2.0 / 255.0) - 1.0
