"""Find, verify and load checkpoints: an explicit path; else the file in the local cache; else the
source's fetcher (a URL with a known sha256, or a custom fetch such as a package download)."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import update_bn

from ..errors import WeightsError
from ..fileio import sha256_file


@dataclass(frozen=True)
class Weights:
    """A checkpoint a model can load and what is known about it, kept next to the weights as
    torchvision's weights enums do: where it comes from (a URL with its sha256, or a custom fetcher
    such as a package download + import), the categories it predicts, and its published metrics."""

    filename: str  # name of the checkpoint in the cache
    url: str | None = None
    sha256: str | None = (
        None  # of the file at `url` / in the cache: full, or a prefix of >= 8 hex digits
    )
    # custom fetch: (cache_dir) -> path of a checkpoint it wrote there; used instead of `url`
    fetch: Callable[[Path], Path] | None = None
    # other formats an explicit path may have: suffix -> (path, cache_dir) -> checkpoint path
    convert: Mapping[str, Callable[[Path, Path], Path]] | None = None
    source: str = ""  # one line for `ssdmobile models`
    categories: tuple[str, ...] = ()  # index = label id, 0 is background
    # published accuracy: {"COCO val2017": {"box_map": 21.3}, ...}; who measured it in `metrics_by`
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    metrics_by: str = ""

    def __post_init__(self):
        if self.sha256 is not None and (
            len(self.sha256) < 8 or any(c not in "0123456789abcdef" for c in self.sha256)
        ):
            raise ValueError(f"{self.filename}: sha256 must be hex digits, at least 8 of them")

    def describe(self) -> str:
        return self.source or self.url or self.filename

    def reference(self) -> str:
        """ "COCO val2017 box_map 21.3 (torchvision)", or "-" when nothing is published."""
        if not self.metrics:
            return "-"
        parts = [
            f"{data} " + ", ".join(f"{k} {v:g}" for k, v in m.items())
            for data, m in self.metrics.items()
        ]
        return "; ".join(parts) + (f" ({self.metrics_by})" if self.metrics_by else "")


@dataclass(frozen=True)
class LoadedWeights:
    """What a Detector was loaded from: the file, its sha256 (recorded in every artifact's sidecar),
    and the registered Weights it was resolved through, if any."""

    path: str
    sha256: str
    meta: Weights | None = None

    def to_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256}


def cache_dir() -> Path:
    """torch hub's checkpoint cache ($TORCH_HOME/hub/checkpoints), where torchvision keeps its
    weights too, so an official file downloaded by torchvision is found here."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def verify_sha256(path: Path, expected: str) -> None:
    """`expected` is a full sha256 or a prefix of one (at least 8 hex digits): torchvision publishes
    only the prefix, in the file name (ssdlite320_mobilenet_v3_large_coco-a79551df.pth), and
    torch.hub checks exactly that prefix."""
    actual = sha256_file(path)
    if not actual.startswith(expected.lower()):
        raise WeightsError(
            f"{path}: sha256 {actual[:16]}... does not match the expected {expected[:16]}...; "
            "the file is corrupt or not the official checkpoint (delete it and try again)"
        )


def resolve_weights(source: Weights, path: str | os.PathLike | None = None) -> Path:
    """Path of a checkpoint to load: explicit path, else cache, else
    fetch/download into the cache."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"checkpoint not found: {path}")
        if source.convert and path.suffix in source.convert:
            return source.convert[path.suffix](path, cache_dir())
        return path
    cached = cache_dir() / source.filename
    if cached.is_file():
        if source.sha256:
            verify_sha256(cached, source.sha256)
        return cached
    cache_dir().mkdir(parents=True, exist_ok=True)
    if source.fetch is not None:
        return source.fetch(cache_dir())
    if source.url is None:
        raise WeightsError(
            f"no weights found: pass --weights PATH or put {source.filename} in {cache_dir()}"
        )
    tmp = cached.with_name(cached.name + ".part")
    try:
        torch.hub.download_url_to_file(source.url, str(tmp), progress=True)
    except Exception as e:  # URLError, HTTPError, socket errors: all mean "could not download"
        tmp.unlink(missing_ok=True)
        raise WeightsError(
            f"could not download {source.url} ({type(e).__name__}: {e}); offline? download "
            f"{source.filename} elsewhere and put it in {cache_dir()}, or pass --weights PATH"
        ) from None
    if source.sha256:
        try:
            verify_sha256(tmp, source.sha256)
        except WeightsError:
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, cached)
    return cached


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """torch.load with weights_only=True, turning every way a file can be bad into WeightsError.
    Accepts a bare state_dict or a training checkpoint holding one under "model"/"state_dict"."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"checkpoint not found: {path}") from None
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        UnicodeDecodeError,
        AttributeError,
        TypeError,
        OSError,
    ) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {first}"
        ) from None
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(
            f"{path}: not a state_dict (expected a mapping of parameter names to tensors)"
        )
    return obj


def load_into(model: torch.nn.Module, state_dict: dict, source: str) -> None:
    """load_state_dict(strict) with one clear line for the usual mismatches. `model` is what the
    checkpoint holds: a detector's core (checkpoints keep the architecture's own keys). A core whose
    publisher saves another layout (NVIDIA's "module." prefixes) translates
    it in `adapt_checkpoint`."""
    if hasattr(model, "adapt_checkpoint"):
        state_dict = model.adapt_checkpoint(state_dict)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        raise WeightsError(
            f"{source} does not fit the model: {len(missing)} missing keys (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:2]}); is it "
            "for another architecture?"
        )
    for k, v in state_dict.items():
        if own[k].shape != v.shape:
            raise WeightsError(
                f"{source} does not fit the model: {k} has shape {list(v.shape)} in the checkpoint "
                f"and {list(own[k].shape)} in the model (different num_classes or width?)"
            )
    model.load_state_dict(state_dict)


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random parameters and BatchNorm statistics with a fixed seed, so a model whose weights
    cannot be fetched offline still gives outputs far from trivial (tests, golden
    files, benchmarks)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5)
            elif name.endswith("running_mean") or name.endswith("bias"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            else:  # weights: scale by fan-in to keep activations in range
                fan_in = t[0].numel() if t.dim() > 1 else 1
                t.copy_(torch.randn(t.shape, generator=g) * (1.5 / fan_in) ** 0.5)
    return model


# exponent of the input covariance that random filters are drawn from: 0 is white (plain
# randomize_), 1 matches the data fully; 0.4 puts the randomized person detector's int8 output SQNR
# where its real trained weights put it (see realistic_random_)
ALIGNMENT = 0.4


def _data_aligned_weight(
    conv: torch.nn.Conv2d, x: torch.Tensor, g: torch.Generator
) -> torch.Tensor:
    """Random filters w = z @ cov^(ALIGNMENT/2), cov the covariance of the conv's input patches (per
    group: a depthwise filter sees its own channel), scaled to unit output standard deviation."""
    # [N, C*kh*kw, L]
    patches = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
    groups, dim = conv.groups, patches.shape[1] // conv.groups
    patches = (
        patches.view(x.shape[0], groups, dim, -1)
        .permute(1, 0, 3, 2)
        .reshape(groups, -1, dim)
        .double()
    )
    patches = patches - patches.mean(1, keepdim=True)
    samples = patches.shape[1]
    cov = patches.transpose(1, 2) @ patches / samples
    # shrink towards isotropic where there are few samples for the
    # dimension (1x1 maps, squeeze-excite)
    shrink = dim / (dim + samples)
    eye = torch.eye(dim, dtype=cov.dtype)
    cov = (1 - shrink) * cov + shrink * cov.diagonal(dim1=1, dim2=2).mean(1)[:, None, None] * eye
    evals, evecs = torch.linalg.eigh(cov)
    root = evecs @ torch.diag_embed(evals.clamp(min=0) ** (ALIGNMENT / 2)) @ evecs.transpose(1, 2)
    w = (
        torch.randn(groups, conv.out_channels // groups, dim, generator=g, dtype=torch.float64)
        @ root
    )
    out_var = torch.einsum("god,gde,goe->go", w, cov, w).clamp(min=1e-12)
    return (w / out_var.sqrt()[..., None]).reshape(conv.weight.shape).to(conv.weight.dtype)


@torch.no_grad()
def realistic_random_(detector, images, seed: int = 0):
    """A random checkpoint whose activations and quantization behaviour look like a trained
    network's, for models with no trained weights here (MobileNetV3). `images`: preprocessed
    [1, 3, H, W] tensors of a training split (e.g. 8 coco128 train2017 images), used as one batch
    (SSDlite's last feature map is 1x1: train-mode BatchNorm needs more than one value per channel).

    1. randomize_(detector, seed), then BatchNorm scales drawn in [0.5, 1.5];
    2. one train-mode pass over `images` in which each conv, just before it runs, redraws its
       filters from the covariance of the input it actually receives (w = z @ cov^0.2, z Gaussian)
       and every BatchNorm re-estimates its running statistics (momentum=None: the cumulative
       average); then a second such pass (torch.optim.swa_utils.update_bn) with the final weights.
       No gradient, no weight update from a loss.

    Why not only re-estimate BatchNorm statistics: randomize_ draws running means and variances
    unrelated to the activations that reach each BatchNorm, so activation ranges look like no
    trained network's; re-estimating them from real images fixes the ranges, but white random
    filters on real (smooth, correlated) feature maps cancel most of the signal and pass the
    noise, and the BatchNorm after them scales both back up, layer after layer. Measured (4 val2017
    images, 16 train2017 calibration images): with statistics re-estimated alone, the person
    detector's int8 output SQNR is ~0 dB for both qnnpack and XNNPACK (its real weights: 24.9 and
    19.6 dB) and 40 dB of input noise comes out at ~3 dB: quantization comparisons on such a
    checkpoint say nothing. Trained filters respond to the directions their input varies in;
    drawing them from the input covariance (exponent ALIGNMENT, chosen so the randomized person
    detector's qnnpack int8 SQNR, 25.5 dB, lands on its real weights') does the same.
    The weights are still random: outputs detect nothing, so report agreement (SQNR, matching
    raw outputs) on such checkpoints, never AP."""
    randomize_(detector, seed)
    core, batch = detector.core, [torch.cat(list(images))]
    g = torch.Generator().manual_seed(seed + 1)
    for m in core.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.weight is not None:
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)

    def redraw(conv, args):
        conv.weight.copy_(_data_aligned_weight(conv, args[0], g))

    hooks = [
        m.register_forward_pre_hook(redraw)
        for m in core.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    threads = torch.get_num_threads()
    # LAPACK's eigh on these small matrices runs 4x slower on 2 threads than
    # on 1 (measured, 2 shared cores)
    torch.set_num_threads(1)
    try:
        update_bn(batch, core)
    finally:
        torch.set_num_threads(threads)
        for h in hooks:
            h.remove()
    update_bn(batch, core)
    return detector.eval()


@torch.no_grad()
def reestimate_batchnorm_(
    model: torch.nn.Module, inputs: Sequence[torch.Tensor]
) -> torch.nn.Module:
    """BatchNorm running statistics recomputed from real inputs, everything else unchanged: one
    train-mode pass over `inputs` concatenated into one batch, with momentum=None (the plain
    average; torch.optim.swa_utils.update_bn). After randomize_ the statistics are random numbers
    unrelated to the activations that reach each BatchNorm; re-estimated on real images (a training
    split) they give activation ranges of the kind a trained network has, which is what fusion,
    export and int8 calibration then see. One batch because maps of 1x1 cells need more than one
    value per channel in train mode. Returns the model in eval mode."""
    update_bn([torch.cat(list(inputs))], model)
    return model.eval()
