"""Pictures of what a detector finds: boxes with class names and scores drawn by torchvision's
`draw_bounding_boxes`, and a float model against an artifact side by side, the boxes that differ
highlighted.

What counts as different in a picture is what a person looking at it would see: of the boxes shown
(score >= the display threshold), a float box and an artifact box are the same box when they have
the same class and IoU >= `iou` (paired greedily, best float score first). Unpaired float boxes are
"float only" (drawn thick, in FLOAT_ONLY), unpaired artifact boxes "artifact only" (thick, in
ARTIFACT_ONLY), paired ones thin (MATCHED). The exact, tolerance-based comparison that gates drift
is ssdmobile.validate.detections_match; this one is for eyes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.ops import box_iou
from torchvision.utils import draw_bounding_boxes

from .fileio import atomic_write

BOX = "#00c853"  # a single model's boxes
MATCHED = "#00c853"  # in both pictures (thin)
FLOAT_ONLY = "#ff1744"  # shown by float, not by the artifact (thick)
ARTIFACT_ONLY = "#2979ff"  # shown by the artifact, not by float (thick)
# a font every install has: matplotlib (a dependency) ships DejaVu Sans; PIL's built-in bitmap
# font is too small to read on a photo
FONT = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


@dataclass(frozen=True)
class BoxDiff:
    """Which shown boxes of a float/artifact pair were paired (see the module docstring)."""

    float_matched: Tensor  # bool [K_float]
    artifact_matched: Tensor  # bool [K_artifact]

    @property
    def float_only(self) -> int:
        return int((~self.float_matched).sum())

    @property
    def artifact_only(self) -> int:
        return int((~self.artifact_matched).sum())

    @property
    def matched(self) -> int:
        return int(self.float_matched.sum())

    @property
    def same(self) -> bool:
        return self.float_only == 0 and self.artifact_only == 0


def boxes(n: int) -> str:
    return f"{n} box" if n == 1 else f"{n} boxes"


def shown(det: dict, score_thresh: float) -> dict:
    """The detections a picture shows: score >= score_thresh, boxes as float32 pixels."""
    keep = det["scores"] >= score_thresh
    return {
        "boxes": det["boxes"][keep].float(),
        "scores": det["scores"][keep].float(),
        "labels": det["labels"][keep].long(),
    }


def diff_boxes(ref: dict, got: dict, iou: float = 0.5) -> BoxDiff:
    """Pair shown float boxes (`ref`) with shown artifact boxes (`got`): same class, IoU >= iou,
    one to one, greedily from the best float score down."""
    used = torch.zeros(len(got["scores"]), dtype=torch.bool)
    ref_matched = torch.zeros(len(ref["scores"]), dtype=torch.bool)
    if len(ref["scores"]) and len(got["scores"]):
        overlap = box_iou(ref["boxes"], got["boxes"])
        same_class = ref["labels"][:, None] == got["labels"][None, :]
        candidates = (overlap >= iou) & same_class
        for i in torch.argsort(ref["scores"], descending=True, stable=True).tolist():
            free = candidates[i] & ~used
            if free.any():
                j = int(torch.argmax(torch.where(free, overlap[i], torch.tensor(-1.0))))
                used[j] = ref_matched[i] = True
    return BoxDiff(ref_matched, used)


def _labels(det: dict, class_names: Sequence[str]) -> list[str]:
    names = [
        class_names[i] if 0 <= i < len(class_names) else f"class {i}"
        for i in det["labels"].tolist()
    ]
    return [f"{n} {s:.2f}" for n, s in zip(names, det["scores"].tolist())]


def _font_size(image: Tensor) -> int:
    return max(10, round(min(image.shape[-2:]) / 32))


def draw_detections(
    image: Tensor,
    det: dict,
    class_names: Sequence[str],
    *,
    score_thresh: float = 0.5,
    colors: Sequence[str] | str = BOX,
    widths: Sequence[int] | int | None = None,
) -> Tensor:
    """uint8 [3, H, W] image with the detections scoring >= score_thresh drawn, each labelled with
    its class name and score. `colors`/`widths`: one for all, or one per shown box."""
    det = shown(det, score_thresh)
    n = len(det["scores"])
    if n == 0:
        return image.clone()
    base = max(2, round(min(image.shape[-2:]) / 160))
    widths = (
        [base] * n if widths is None else [widths] * n if isinstance(widths, int) else list(widths)
    )
    colors = [colors] * n if isinstance(colors, str) else list(colors)
    labels = _labels(det, class_names)
    # draw_bounding_boxes takes one width per call: one call per distinct
    # width (thin, then thick on top)
    out = image
    for w in sorted(set(widths)):
        idx = [i for i in range(n) if widths[i] == w]
        out = draw_bounding_boxes(
            out,
            det["boxes"][idx],
            labels=[labels[i] for i in idx],
            colors=[colors[i] for i in idx],
            width=w,
            font=FONT,
            font_size=_font_size(image),
            label_background_colors=[colors[i] for i in idx],
            label_colors="white",
            fill_labels=True,
        )
    return out


def draw_pair(
    image: Tensor,
    ref: dict,
    got: dict,
    class_names: Sequence[str],
    *,
    score_thresh: float = 0.5,
    iou: float = 0.5,
) -> tuple[Tensor, Tensor, BoxDiff]:
    """The same image drawn twice: float boxes (float-only thick in FLOAT_ONLY) and artifact boxes
    (artifact-only thick in ARTIFACT_ONLY), paired ones thin in MATCHED."""
    ref, got = shown(ref, score_thresh), shown(got, score_thresh)
    d = diff_boxes(ref, got, iou)
    thick = max(3, round(min(image.shape[-2:]) / 110))
    thin = max(2, thick // 2)

    def style(matched: Tensor, other: str):
        return (
            [MATCHED if m else other for m in matched.tolist()],
            [thin if m else thick for m in matched.tolist()],
        )

    fc, fw = style(d.float_matched, FLOAT_ONLY)
    ac, aw = style(d.artifact_matched, ARTIFACT_ONLY)
    left = draw_detections(image, ref, class_names, score_thresh=score_thresh, colors=fc, widths=fw)
    right = draw_detections(
        image, got, class_names, score_thresh=score_thresh, colors=ac, widths=aw
    )
    return left, right, d


def with_caption(image: Tensor, text: str, color: str = "#202020") -> Tensor:
    """A strip of text above the image (white on `color`)."""
    h, w = image.shape[-2:]
    size = max(11, round(min(h, w) / 28))
    font = ImageFont.truetype(FONT, size)
    while font.getlength(text) > w - size and size > 9:  # shrink to fit, then cut
        size -= 1
        font = ImageFont.truetype(FONT, size)
    while len(text) > 1 and font.getlength(text) > w - size:
        text = text[:-2] + "…"
    strip = Image.new("RGB", (w, int(size * 1.8)), color)
    ImageDraw.Draw(strip).text((size // 2, size // 3), text, fill="white", font=font)
    top = torch.from_numpy(np.array(strip)).permute(2, 0, 1)  # a copy: PIL's buffer is read-only
    return torch.cat([top, image], dim=1)


def hstack(images: Sequence[Tensor], gap: int = 6) -> Tensor:
    """Side by side on a white background, top-aligned."""
    h = max(im.shape[1] for im in images)
    w = sum(im.shape[2] for im in images) + gap * (len(images) - 1)
    out = torch.full((3, h, w), 255, dtype=torch.uint8)
    x = 0
    for im in images:
        out[:, : im.shape[1], x : x + im.shape[2]] = im
        x += im.shape[2] + gap
    return out


def vstack(images: Sequence[Tensor], gap: int = 6) -> Tensor:
    """One above the other on a white background, left-aligned."""
    w = max(im.shape[2] for im in images)
    h = sum(im.shape[1] for im in images) + gap * (len(images) - 1)
    out = torch.full((3, h, w), 255, dtype=torch.uint8)
    y = 0
    for im in images:
        out[:, y : y + im.shape[1], : im.shape[2]] = im
        y += im.shape[1] + gap
    return out


def resize_to(image: Tensor, det: dict, max_side: int) -> tuple[Tensor, dict]:
    """Shrink an image (and scale its detections' boxes) so its longer side is at most max_side;
    boxes are drawn after shrinking so their lines stay visible."""
    h, w = image.shape[-2:]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return image, det
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    pil = Image.fromarray(image.permute(1, 2, 0).numpy()).resize(size, Image.Resampling.BILINEAR)
    small = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1)
    sx, sy = size[0] / w, size[1] / h
    return small, {**det, "boxes": det["boxes"].float() * torch.tensor([sx, sy, sx, sy])}


def compare_picture(
    image: Tensor,
    ref: dict,
    got: dict,
    class_names: Sequence[str],
    *,
    ref_title: str,
    got_title: str,
    score_thresh: float = 0.5,
    iou: float = 0.5,
    max_side: int | None = None,
) -> tuple[Tensor, BoxDiff]:
    """Float (left) and artifact (right) on one image, captioned with what differs."""
    if max_side is not None:
        small, ref = resize_to(image, ref, max_side)
        _, got = resize_to(image, got, max_side)
        image = small
    left, right, d = draw_pair(image, ref, got, class_names, score_thresh=score_thresh, iou=iou)
    same = (
        "same boxes"
        if d.same
        else f"{d.float_only} float only (red), {d.artifact_only} {got_title} only (blue)"
    )
    left = with_caption(left, f"{ref_title}: {boxes(d.matched + d.float_only)} >= {score_thresh:g}")
    right = with_caption(right, f"{got_title}: {same}", "#202020" if d.same else "#7a1020")
    return hstack([left, right]), d


def save_png(image: Tensor, path: str | os.PathLike) -> Path:
    """uint8 [3, H, W] -> PNG, written atomically."""
    pil = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    return atomic_write(path, lambda tmp: pil.save(tmp, format="PNG", optimize=False))


PREVIEW_MODES = ("fill", "fit", "crop")


def preview_box(
    box: Sequence[float],
    src_w: int,
    src_h: int,
    view_w: int,
    view_h: int,
    mode: str,
    mirror: bool = False,
) -> tuple[float, float, float, float]:
    """A normalized (x1, y1, x2, y2) box of a src_w x src_h image -> (left, top, right, bottom) in
    the pixels of a view_w x view_h view showing that image with a scale mode, as the apps draw it
    (PreviewMapping.kt, line for line, in float32 as Kotlin and Swift compute):
      "fill": stretched to the view on both axes;
      "fit": scaled uniformly to fit inside, centered, letterboxed;
      "crop": scaled uniformly to cover the view, centered, the overflow cropped.
    `mirror` flips horizontally (a front camera's preview). Nothing is clipped to the view."""
    if min(src_w, src_h, view_w, view_h) <= 0:
        raise ValueError("sizes must be positive")
    if mode not in PREVIEW_MODES:
        raise ValueError(f"unknown scale mode {mode!r} (one of {', '.join(PREVIEW_MODES)})")
    f = np.float32
    sw, sh, vw, vh = f(src_w), f(src_h), f(view_w), f(view_h)
    x1, y1, x2, y2 = (f(v) for v in box)
    if mode == "fill":
        sx, sy = vw / sw, vh / sh
    else:
        sx = min(vw / sw, vh / sh) if mode == "fit" else max(vw / sw, vh / sh)
        sy = sx
    off_x = (vw - sw * sx) / f(2)
    off_y = (vh - sh * sy) / f(2)
    left, right = x1 * sw * sx + off_x, x2 * sw * sx + off_x
    if mirror:
        left, right = vw - right, vw - left
    return float(left), float(y1 * sh * sy + off_y), float(right), float(y2 * sh * sy + off_y)
