"""Which layers hurt when quantized: quantize one unit alone (everything else float) and measure the
output SQNR (signal-to-quantization-noise ratio, dB, of box_encodings and class_logits against
the float model) on calibration images. Low SQNR = sensitive.

A unit is what int8 kernels compute as one op: a Conv2d with its BatchNorm and activation
(Conv2dNormActivation: ReLU, ReLU6 or, in MobileNetV3, hardswish), or a bare conv (a prediction
conv; a squeeze-excite fc1 / fc2 in MobileNetV3). Quantizing it alone is simulated in eager float
code on the BN-folded model with the int8 scheme's arithmetic: the unit's input fake-quantized
per-tensor asymmetric int8, its (folded) weights per-channel symmetric int8, its output per-tensor
asymmetric int8, activation ranges observed (min/max) on the same images. One pass observes every
range, then one pass per unit; no export per layer, so ranking a MobileNetV2 SSDLite (~100 units)
takes a minute on a few images.

The ranked names are module names inside the detector's core, the names every float-fallback
mechanism takes (quant/float_fallback.py: ExecuTorch's quantizer filter, onnxruntime's
nodes_to_exclude, eager qnnpack's qconfig None).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..errors import QuantizationError
from ..fuse import fuse_detector


@dataclass
class UnitSensitivity:
    name: str
    kind: str  # e.g. "Conv2d 3x3 dw 96ch"
    sqnr_db: float


def quant_units(core: nn.Module) -> dict[str, nn.Module]:
    """name -> module of every quantizable unit: a Sequential led by a Conv2d (after an optional
    ZeroPad2d) followed by its BatchNorm (or the Identity left by folding), else the bare Conv2d."""
    units, covered = {}, set()
    for name, m in core.named_modules():
        if isinstance(m, nn.Sequential):
            kids = [k for k in m.children() if not isinstance(k, nn.ZeroPad2d)]
            if (
                len(kids) >= 2
                and isinstance(kids[0], nn.Conv2d)
                and isinstance(kids[1], (nn.BatchNorm2d, nn.Identity))
            ):
                units[name] = m
                covered.add(id(kids[0]))
    for name, m in core.named_modules():
        if isinstance(m, nn.Conv2d) and id(m) not in covered:
            units[name] = m
    return units


def _conv_of(unit: nn.Module) -> nn.Conv2d:
    return (
        unit
        if isinstance(unit, nn.Conv2d)
        else next(k for k in unit.children() if isinstance(k, nn.Conv2d))
    )


_ACTIVATIONS = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Hardswish: "hardswish"}


def _describe(name: str, unit: nn.Module) -> str:
    """e.g. "Conv2d 3x3 dw 72->72 + relu", "SE fc1 Conv2d 1x1 72->24",
    "Conv2d 1x1 40->240 + hardswish"."""
    conv = _conv_of(unit)
    k = "x".join(map(str, conv.kernel_size))
    dw = " dw" if conv.groups > 1 and conv.groups == conv.in_channels else ""
    se = "SE " + name.rsplit(".", 1)[-1] + " " if name.rsplit(".", 1)[-1] in ("fc1", "fc2") else ""
    acts = [_ACTIVATIONS[type(m)] for m in unit.children() if type(m) in _ACTIVATIONS]
    return f"{se}Conv2d {k}{dw} {conv.in_channels}->{conv.out_channels}" + "".join(
        f" + {a}" for a in acts
    )


def _fq_tensor(x: Tensor, lo: float, hi: float) -> Tensor:
    """Per-tensor asymmetric int8 (-128..127) fake quantization with range [lo, hi] (incl. 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / 255.0, 1e-12)
    zp = int(round(-128 - lo / scale))
    return torch.fake_quantize_per_tensor_affine(x, scale, zp, -128, 127)


def _fq_weight(w: Tensor) -> Tensor:
    """Per-channel symmetric int8 (-127..127)."""
    amax = w.abs().flatten(1).amax(1).clamp(min=1e-12)
    scale = (amax / 127.0).float()
    return torch.fake_quantize_per_channel_affine(
        w, scale, torch.zeros_like(scale, dtype=torch.int32), 0, -127, 127
    )


def sqnr_db(ref: Sequence[Tensor], got: Sequence[Tensor]) -> float:
    signal = sum(float((r.double() ** 2).sum()) for r in ref)
    noise = sum(float(((r.double() - g.double()) ** 2).sum()) for r, g in zip(ref, got))
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


@torch.no_grad()
def rank_layers(
    detector, inputs: Sequence[Tensor], progress: bool = True, only: Sequence[str] | None = None
) -> list[UnitSensitivity]:
    """Units sorted most sensitive first (lowest SQNR when quantized
    alone); `only`: rank just these."""
    fused, _ = fuse_detector(detector)
    core = fused.core.eval()
    units = quant_units(core)
    if only is not None:
        unknown = [n for n in only if n not in units]
        if unknown:
            raise QuantizationError(f"not quantizable units: {', '.join(unknown)}")
        units = {n: units[n] for n in only}
    x = torch.cat(list(inputs))
    ref = core(x)

    ranges: dict[str, list[float]] = {}  # name -> [in_lo, in_hi, out_lo, out_hi]
    hooks = []
    for name, unit in units.items():

        def observe(mod, args, out, name=name):
            i, o = args[0], out
            r = ranges.setdefault(name, [math.inf, -math.inf, math.inf, -math.inf])
            r[0], r[1] = min(r[0], float(i.min())), max(r[1], float(i.max()))
            r[2], r[3] = min(r[2], float(o.min())), max(r[3], float(o.max()))

        hooks.append(unit.register_forward_hook(observe))
    core(x)
    for h in hooks:
        h.remove()

    results = []
    for name, unit in tqdm(
        units.items(), desc="sensitivity", unit="layer", disable=not progress, leave=False
    ):
        if name not in ranges:  # not on the forward path
            continue
        conv = _conv_of(unit)
        w = conv.weight.data
        conv.weight.data = _fq_weight(w)
        r = ranges[name]
        pre = unit.register_forward_pre_hook(lambda m, a, r=r: (_fq_tensor(a[0], r[0], r[1]),))
        post = unit.register_forward_hook(lambda m, a, o, r=r: _fq_tensor(o, r[2], r[3]))
        try:
            got = core(x)
        finally:
            pre.remove()
            post.remove()
            conv.weight.data = w
        results.append(UnitSensitivity(name, _describe(name, unit), sqnr_db(ref, got)))
    return sorted(results, key=lambda u: u.sqnr_db)
