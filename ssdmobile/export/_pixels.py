"""Camera bytes in: a detector whose program takes the uint8 pixels the app already has, at the
model's input size, NHWC, RGB, with the normalization `(pixel / 255 - mean) / std` in the graph.

The host step before the program is Detector.pixels (the image resized to the model's size in
float with the model's resize, rounded to the nearest integer, HWC): the apps do the same.

Where the normalization can go, it is folded into the first convolution: its weights are scaled by
1 / (255 std) per input channel and its bias takes -sum(w * mean / std). The convolution's zero
padding is zero *after* normalization, i.e. the pixel value 255 * mean; so a padded first
convolution becomes an explicit constant pad with that value and an unpadded convolution (exact
at the borders too; possible when the three means are equal, one pad value). Otherwise (the input
reaches something other than one convolution first, or the means differ) the normalization stays
a per-channel multiply-add in front of the core. Either way the program's first ops are the cast
uint8 -> float32 and the NHWC -> NCHW permute; the sidecar (executorch.pixel_input) says which."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ..detector import Detector


class PixelAffine(nn.Module):
    """float pixels [N, 3, H, W] in 0..255 -> (pixel / 255 - mean) / std -> the core."""

    def __init__(self, core: nn.Module, mean, std):
        super().__init__()
        self.core = core
        std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("shift", -mean / std)

    def forward(self, x: Tensor):
        return self.core(x * self.scale + self.shift)


class PixelDetector(Detector):
    """The detector whose core takes float pixels [N, 3, H, W] (0..255, already at the model's
    size) and whose preprocess is the host step as floats: calibration, evaluation and export of
    this detector all see the very pixels the app hands over."""

    def preprocess(self, images) -> Tensor:
        return self.pixels(images).permute(0, 3, 1, 2).float().to(self.anchors.device)


class PixelsNHWC(nn.Module):
    """What the program is: uint8 [N, H, W, 3] -> cast, NHWC -> NCHW -> `module`."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, pixels: Tensor):
        # cast first: XNNPACK takes the float permute (and folds it into its own NHWC layout);
        # a uint8 permute would stay outside the delegate as a copy
        return self.module(pixels.to(torch.float32).permute(0, 3, 1, 2))


def _first_conv(core: nn.Module, x: Tensor) -> tuple[str | None, str | None]:
    """(the one Conv2d that receives the core's input itself or through one ZeroPad2d, that
    ZeroPad2d), or (None, None). TF "SAME" models pad explicitly before a stride-2 conv."""
    seen: list[str] = []
    padded: dict[str, Tensor] = {}

    def conv_hook(name):
        def hook(m, args):
            if args[0] is x or any(args[0] is t for t in padded.values()):
                seen.append(name)

        return hook

    def pad_hook(name):
        def hook(m, args, out):
            if args[0] is x:
                padded[name] = out

        return hook

    hooks = [
        m.register_forward_pre_hook(conv_hook(name))
        for name, m in core.named_modules()
        if isinstance(m, nn.Conv2d)
    ] + [
        m.register_forward_hook(pad_hook(name))
        for name, m in core.named_modules()
        if isinstance(m, nn.ZeroPad2d)
    ]
    try:
        with torch.no_grad():
            core(x)
    finally:
        for h in hooks:
            h.remove()
    if len(seen) != 1 or len(padded) > 1:
        return None, None
    return seen[0], next(iter(padded), None)


def _folded_conv(conv: nn.Conv2d, mean, std) -> nn.Module | None:
    if conv.in_channels != 3 or conv.groups != 1 or conv.padding_mode != "zeros":
        return None
    if not isinstance(conv.padding, tuple):  # "same" / "valid" strings
        return None
    ph, pw = conv.padding
    if (ph or pw) and len(set(mean)) != 1:
        return None  # per-channel pad values: no single constant pad
    w = conv.weight.detach()
    a = (1.0 / (255.0 * torch.tensor(std, dtype=w.dtype))).view(1, 3, 1, 1)
    b = (-torch.tensor(mean, dtype=w.dtype) / torch.tensor(std, dtype=w.dtype)).view(1, 3, 1, 1)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
    folded = nn.Conv2d(
        3, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation, bias=True
    )
    with torch.no_grad():
        folded.weight.copy_(w * a)
        folded.bias.copy_(bias + (w * b).sum(dim=(1, 2, 3)))
    if not (ph or pw):
        return folded
    return nn.Sequential(nn.ConstantPad2d((pw, pw, ph, ph), 255.0 * float(mean[0])), folded)


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def pixel_core(detector) -> tuple[nn.Module, dict]:
    """(core taking float pixels [N, 3, H, W] 0..255, the sidecar's executorch.pixel_input)."""
    p = detector.spec.preprocess
    core = detector.core.eval()
    h, w = p.size
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (1, 3, h, w), generator=g).float()
    mean = torch.tensor(p.mean).view(1, 3, 1, 1)
    std = torch.tensor(p.std).view(1, 3, 1, 1)
    x = (pixels / 255.0 - mean) / std
    steps = ["cast uint8 -> float32", "permute NHWC -> NCHW"]
    name, pad = _first_conv(core, x)
    folded = None
    if name is not None and not isinstance(core, torch.fx.GraphModule):
        new = _folded_conv(core.get_submodule(name), p.mean, p.std)
        if new is not None and pad is not None and len(set(p.mean)) != 1:
            new = None  # the explicit zero pad becomes a constant pad: one value for 3 channels
        if new is not None:
            folded = copy.deepcopy(core)
            _replace(folded, name, new)
            if pad is not None:
                value = 255.0 * float(p.mean[0])
                _replace(folded, pad, nn.ConstantPad2d(core.get_submodule(pad).padding, value))
            with torch.no_grad():  # exact up to float rounding, or not folded at all
                want, got = core(x), folded(pixels)
            scale = max(float(t.abs().max()) for t in want) or 1.0
            if any(float((a - b).abs().max()) > 1e-4 * scale for a, b in zip(want, got)):
                folded = None
            elif isinstance(new, nn.Sequential) or pad is not None:
                steps.append(f"constant pad {255.0 * float(p.mean[0]):g} (the folded zero padding)")
    if folded is None:
        steps.append("(pixel / 255 - mean) / std as a per-channel multiply-add")
        return PixelAffine(core, p.mean, p.std).eval(), {
            "folded_into_first_conv": False,
            "steps": steps,
        }
    return folded.eval(), {"folded_into_first_conv": True, "first_conv": name, "steps": steps}


def pixel_detector(detector) -> tuple[PixelDetector, dict]:
    """The float detector as one that takes pixels (see the module docstring), and the record
    its sidecar keeps of what was folded."""
    core, record = pixel_core(detector)
    out = PixelDetector(core, detector.anchors, detector.spec).eval()
    out.weights = detector.weights
    return out, record
