"""BatchNorm folding: every Conv2d -> BatchNorm2d of a detector becomes one Conv2d with bias.

Both detector families keep each conv and its BatchNorm as adjacent children of one nn.Sequential
(torchvision's Conv2dNormActivation; the TF-compatible MobileNetV2's blocks, where a ZeroPad2d may
lead), so folding walks every Sequential and fuses each adjacent (Conv2d, BatchNorm2d) pair with
`torch.nn.utils.fusion.fuse_conv_bn_eval`, the function torch.ao.quantization.fuse_modules uses.
torchvision's ResNet blocks (NVIDIA's SSD300 keeps them, and their checkpoint keys) hold convN / bnN
as attributes instead; those pairs are folded the same way.

The BatchNorm is replaced by nn.Identity instead of being removed: indices inside the Sequential
stay valid (the MobileNetV2 core taps `block.conv[0]` and runs `block.conv[1:]`), and the activation
that followed stays right after the conv, so quantization can still fuse Conv+ReLU later.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models.resnet import BasicBlock, Bottleneck

from .errors import SSDMobileError
from .fileio import sha256_file
from .models import create_model
from .models.weights import LoadedWeights, load_into, load_state_dict_file


class FusionError(SSDMobileError):
    """A model cannot be fused as asked (a BatchNorm that follows no conv, training mode...)."""


@dataclass
class FuseReport:
    fused: list[str]  # "<conv name> + <bn name>"
    unfused_batchnorms: list[str]  # BatchNorms that follow no conv (left as they are)

    def __str__(self) -> str:
        s = f"folded {len(self.fused)} Conv2d+BatchNorm2d pairs"
        if self.unfused_batchnorms:
            s += (
                f"; {len(self.unfused_batchnorms)} BatchNorm2d left (no conv before them): "
                f"{', '.join(self.unfused_batchnorms[:3])}"
            )
        return s


def _conv_bn_pairs(model: nn.Module):
    """(parent name, parent, conv key, bn key) for every adjacent Conv2d -> BatchNorm2d of a
    Sequential, and every convN -> bnN of a torchvision ResNet block (its forward runs bnN right
    after convN; NVIDIA's SSD300 keeps those blocks and their keys)."""
    for name, module in model.named_modules():
        if isinstance(module, (Bottleneck, BasicBlock)):
            for i in (1, 2, 3):
                if isinstance(getattr(module, f"conv{i}", None), nn.Conv2d):
                    yield name, module, f"conv{i}", f"bn{i}"
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (ci, conv), (bi, bn) in itertools.pairwise(children):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                yield name, module, ci, bi


def fuse_batchnorm_(model: nn.Module) -> FuseReport:
    """Fold in place. The model must be in eval mode (folding uses the running statistics)."""
    if any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        raise FusionError(
            "BatchNorm folding needs an eval-mode model (call .eval() first): "
            "in training mode BatchNorm uses batch statistics, which cannot be folded"
        )
    fused = []
    with torch.no_grad():
        for seq_name, seq, ci, bi in list(_conv_bn_pairs(model)):
            conv, bn = seq._modules[ci], seq._modules[bi]
            if bn.running_mean is None or not bn.track_running_stats:
                continue  # no statistics to fold
            # fold in float64, then round once: the folded weights are the closest float32 values
            dtype = conv.weight.dtype
            folded = fuse_conv_bn_eval(copy.deepcopy(conv).double(), copy.deepcopy(bn).double())
            seq._modules[ci] = folded.to(dtype)
            seq._modules[bi] = nn.Identity()
            prefix = f"{seq_name}." if seq_name else ""
            fused.append(f"{prefix}{ci} + {prefix}{bi}")
    left = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    return FuseReport(fused, left)


def fuse_detector(detector, inplace: bool = False):
    """-> (detector with BatchNorm folded into its convs, FuseReport). The detector's spec, anchors
    and outputs are unchanged; its state_dict has no BatchNorm entries any more
    (conv biases instead)."""
    fused = detector if inplace else copy.deepcopy(detector)
    fused.eval()
    report = fuse_batchnorm_(fused)
    return fused, report


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def load_fused(model_name: str, path):
    """A fused Detector from a core state_dict that `ssdmobile fuse --out` wrote."""
    fused, _ = fuse_detector(create_model(model_name, None), inplace=True)
    load_into(fused.core, load_state_dict_file(path), str(path))
    fused.weights = LoadedWeights(str(path), sha256_file(path))
    return fused.eval()
