"""The one image decoder (evaluation, calibration, training, golden files, benching): any image
Pillow opens becomes uint8 RGB [3, H, W], with its tones kept:

- 8-bit modes (RGB, L, P, CMYK, YCbCr, 1...) go through Pillow's own conversion to RGB;
- alpha (RGBA, LA, PA, palette with a transparent colour) is dropped: the stored colours are kept,
  as the camera or the app would pass them (no compositing on a background);
- 16-bit grayscale (I;16, I;16B...) is scaled to 8 bits (value / 257), never clipped: Pillow's own
  convert("L") clips, which turned a 16-bit PNG into a white image;
- 32-bit integer grayscale (I) holds 16-bit data when its values fit 0..65535 (how Pillow
  represents 16-bit data after many operations) and is scaled as such; otherwise it is taken as
  full-range 32-bit (0..2^31-1). Negative values are clipped to 0;
- 32-bit float grayscale (F) is taken as 0..1 (the float image convention), values outside clipped;
- EXIF orientation is applied, unless an annotation file says the stored (unrotated) size.

Anything else (undecodable, truncated, a mode with no RGB meaning) is one ImageError line.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _gray_to_rgb(values: np.ndarray, full_scale: float) -> np.ndarray:
    gray = np.clip(np.rint(values.astype(np.float64) * (255.0 / full_scale)), 0, 255).astype(
        np.uint8
    )
    return np.repeat(gray[..., None], 3, axis=-1)


def to_rgb8(im: Image.Image) -> np.ndarray:
    """A decoded Pillow image -> uint8 [H, W, 3] RGB (see the module docstring for each mode)."""
    mode = im.mode
    if mode in _SIXTEEN_BIT:
        return _gray_to_rgb(np.asarray(im), 65535.0)
    if mode == "I":
        values = np.asarray(im)
        return _gray_to_rgb(values, 65535.0 if values.max(initial=0) <= 65535 else 2.0**31 - 1)
    if mode == "F":
        return _gray_to_rgb(np.nan_to_num(np.asarray(im), nan=0.0), 1.0)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        # the alpha channel is dropped, the colours under it kept
        base = {"LA": "L", "La": "L"}.get(mode, "RGB")
        with warnings.catch_warnings():  # Pillow warns that palette transparency becomes alpha
            warnings.simplefilter("ignore")
            im = im.convert("RGBA" if base == "RGB" else "LA").convert(base)
    try:
        return np.asarray(im.convert("RGB"))
    except (ValueError, OSError) as e:
        raise ImageError(f"image mode {mode!r} has no RGB conversion ({e})") from None


def load_image(
    path: str | os.PathLike, expected_size: tuple[int, int] | None = None
) -> torch.Tensor:
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
            if (
                expected_size is not None
                and oriented.size != tuple(expected_size)
                and im.size == tuple(expected_size)
            ):
                oriented = im
            rgb = to_rgb8(oriented)
    except ImageError as e:
        raise ImageError(f"cannot decode image {path}: {e}") from None
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as e:
        raise ImageError(f"cannot decode image {path}: {e}") from None
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or 0 in rgb.shape:
        raise ImageError(
            f"cannot decode image {path}: decoded to shape {list(rgb.shape)}, not H x W x 3"
        )
    # a writable copy
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def undecodable(paths) -> dict[Path, str]:
    """{path: "path: why"} for each image `load_image` cannot decode (each is decoded once, fully:
    a header check would pass a truncated file that fails later, after work was done)."""
    bad = {}
    for path in map(Path, paths):
        try:
            load_image(path)
        except ImageError as e:
            bad[path] = " ".join(str(e).removeprefix("cannot decode image ").split())
    return bad


def refuse_undecodable(paths, why: str) -> None:
    """One ImageError naming every image that cannot be decoded, before any work: for commands
    whose result means "all of these images" (AP of a split, int8 ranges of a calibration set)."""
    paths = list(paths)
    bad = undecodable(paths)
    if bad:
        raise ImageError(
            f"{len(bad)} of {len(paths)} images cannot be decoded ({why}; fix or remove them): "
            + "; ".join(bad.values())
        )


def image_files(paths) -> list[Path]:
    """Image files named on a command line: each file as given, each folder's images (by suffix,
    sorted by name, not recursive). A folder without images is an ImageError."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise ImageError(f"no images in {p} (looked for {', '.join(IMAGE_SUFFIXES)})")
            out.extend(found)
        elif not p.is_file():
            raise ImageError(f"image not found: {p}")
        else:
            out.append(p)
    return out
