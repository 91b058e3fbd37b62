"""Distributed runs (torchrun: gloo on CPU, nccl on GPU) and resumable checkpoints."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..errors import SSDMobileError
from ..fileio import atomic_write_bytes, discard
from ..quant.qat import float_state_dict


class TrainingError(SSDMobileError):
    """A training run cannot start or resume as asked (no images for a
    rank, a foreign checkpoint...)."""


def weights_sha256(module: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def init_distributed() -> tuple[int, int]:
    """(rank, world size): under torchrun the process group is
    started (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return rank, world


def _listify(x):
    return [_listify(v) for v in x] if isinstance(x, (list, tuple)) else x


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_checkpoint(
    out: Path,
    prepared,
    optimizer,
    step: int,
    rng: random.Random,
    core: nn.Module,
    config: dict,
    rank: int,
    world: int,
    scheduler=None,
) -> None:
    """Rank 0 writes float.pth (the trained float weights under the model's keys: PTQ of any target
    loads them), then last.pt (the QAT model, optimizer, learning-rate scheduler, step, every rank's
    data and torch RNG: everything a resumed run needs to take the very steps an uninterrupted one
    takes), each atomically (temporary file, fsync, rename: a run killed at any moment leaves the
    previous complete checkpoint). Every rank must call it (the RNG states are gathered)."""
    states = [(_listify(rng.getstate()), torch.get_rng_state())]
    if world > 1:
        states = [None] * world
        dist.all_gather_object(states, (_listify(rng.getstate()), torch.get_rng_state()))
    if rank != 0:
        return
    ckpt = {
        "model": prepared.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "step": step,
        "rng": [s for s, _ in states],
        "torch_rng": [t for _, t in states],
        "config": config,
    }
    for name, obj in (("float.pth", float_state_dict(prepared, core)), ("last.pt", ckpt)):
        atomic_write_bytes(out / name, lambda buffer, obj=obj: torch.save(obj, buffer))


def load_checkpoint(
    path: Path, prepared, optimizer, rng: random.Random, rank: int, scheduler=None
) -> int:
    """Restore a run from last.pt; -> the step to continue from. The temporaries of a write that
    was killed midway (SIGKILL, power loss) are removed."""
    for stale in path.parent.glob(".*.part*"):
        discard(stale)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        prepared.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if (ckpt.get("scheduler") is None) != (scheduler is None):
            raise ValueError("the checkpoint and the config disagree on having a scheduler")
        if scheduler is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
    except (RuntimeError, KeyError, ValueError, OSError) as e:
        raise TrainingError(
            f"{path}: cannot resume from it ({str(e).splitlines()[0][:160]}); "
            "delete it or set resume=false"
        ) from None
    rng.setstate(_tuplify(ckpt["rng"][rank % len(ckpt["rng"])]))
    if "torch_rng" in ckpt:
        torch.set_rng_state(ckpt["torch_rng"][rank % len(ckpt["torch_rng"])])
    return int(ckpt["step"])
