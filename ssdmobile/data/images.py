"""Decode an image file into a uint8 RGB tensor [3, H, W]: EXIF orientation applied, grayscale,
CMYK, palette and alpha images converted to RGB (alpha dropped), anything undecodable rejected
with one clear ImageError."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError


def load_image(path: str | os.PathLike, expected_size: tuple[int, int] | None = None) -> torch.Tensor:
    """expected_size (W, H), from an annotation file: annotations are made on the stored pixels,
    so the EXIF rotation is applied only when the rotated size is what the annotation expects
    (or when nothing is expected)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            oriented = ImageOps.exif_transpose(im)
            if expected_size is not None and oriented.size != tuple(expected_size) and im.size == tuple(expected_size):
                oriented = im
            rgb = oriented.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"cannot decode image {path}: {e}") from None
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()
