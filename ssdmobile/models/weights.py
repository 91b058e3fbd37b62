"""Find, verify and load checkpoints: an explicit path; else the file in the local cache; else the
source's fetcher (a URL with a known sha256, or a custom fetch such as a package download)."""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import WeightsError
from ..fileio import sha256_file

log = logging.getLogger(__name__)


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


DETECTOR_PREFIX = "core."  # a Detector's state_dict: its core's keys under `core.`


def load_into(model: torch.nn.Module, state_dict: dict, source: str) -> None:
    """load_state_dict(strict) with one clear line for the usual mismatches. `model` is what the
    checkpoint holds: a detector's core (checkpoints keep the architecture's own keys). A whole
    Detector's state_dict (`torch.save(create_model(name).state_dict(), p)`: every key under
    "core.") loads the same, said in one info line. A core whose publisher saves another layout
    (NVIDIA's "module." prefixes) translates it in `adapt_checkpoint`."""
    own = model.state_dict()
    if (
        state_dict
        and all(k.startswith(DETECTOR_PREFIX) for k in state_dict)
        and not all(k.startswith(DETECTOR_PREFIX) for k in own)
    ):
        state_dict = {k[len(DETECTOR_PREFIX) :]: v for k, v in state_dict.items()}
        log.info(f"{source}: a detector's state_dict; loading its {DETECTOR_PREFIX!r} keys")
    if hasattr(model, "adapt_checkpoint"):
        state_dict = model.adapt_checkpoint(state_dict)
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
