"""Quantization-aware training of an SSD detector for int8 (the XNNPACK / QNNPACK scheme), one
script to read top to bottom. Configs are YAML files beside it (qat_*.yaml); run it as

    ssdmobile train --recipe recipes/qat_ssdlite_person_coco128.yaml [optimizer.lr=3e-5 ...]
    python recipes/qat.py --config recipes/qat_ssdlite_person_coco128.yaml [key=value ...]
    torchrun --nproc_per_node 2 -m ssdmobile train --recipe recipes/qat_ssdlite_person_coco128.yaml

What it does:
 1. builds the float model (the teacher) and the QAT model: a copy of its core, torch.exported
    and prepared with fake quantization (PT2E, ExecuTorch's XNNPACKQuantizer);
 2. optionally calibrates the quantization ranges as post-training quantization does, so that
    step 0 is the PTQ model;
 3. fine-tunes with the configured loss (SSD loss on the labels and/or distillation from the
    float teacher) and optimizer, freezing BatchNorm statistics and observers when configured,
    checkpointing as it goes (resumable; under torchrun every rank trains on its share);
 4. exports int8 artifacts: ExecuTorch from the converted QAT model itself; ONNX and TorchScript
    (their own quantizers) from the QAT-trained float weights, ranges calibrated on the same images;
 5. evaluates the float model and every runnable artifact on the evaluation split.

Copy this file and its YAML to change anything; the building blocks live in ssdmobile.quant.qat
(fake quantization: model preparation, ranges, conversion) and ssdmobile.training (data, the
losses, distributed runs and checkpoints).
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import MISSING
from torch import nn

from ssdmobile.config import ConfigError, as_dict, check_component, instantiate
from ssdmobile.data import open_dataset, refuse_shared_images
from ssdmobile.evaluate import evaluate_model
from ssdmobile.fileio import prepare_out_dir
from ssdmobile.models import create_model
from ssdmobile.quant.ptq import SCHEME, Calibration, calibration_inputs
from ssdmobile.quant.qat import (
    calibrate_ranges,
    convert_qat,
    float_state_dict,
    freeze_observers,
    prepare_qat,
    set_bn_frozen,
)
from ssdmobile.table import print_table
from ssdmobile.targets import TARGETS
from ssdmobile.targets.artifacts import evaluate_artifact
from ssdmobile.targets.pipeline import export, export_quantized
from ssdmobile.training.checkpoint import (
    TrainingError,
    init_distributed,
    load_checkpoint,
    save_checkpoint,
    weights_sha256,
)
from ssdmobile.training.data import make_batch, training_samples

# -- the config: every key a YAML file may set, with its type and default -------------------------


@dataclass
class ModelConfig:
    name: str = MISSING
    weights: str | None = "default"  # "default" (registered checkpoint), a path, or null (random)


@dataclass
class DataConfig:
    root: str = MISSING
    split: str = "train2017"  # never the split AP is reported on
    num_images: int | None = None  # null: the whole split
    batch_size: int = 8  # per process
    hflip: bool = True


@dataclass
class QuantConfig:
    observer: str = "minmax"  # activation ranges: minmax (moving average) | histogram (PTQ's)
    calibrate_images: int | None = None  # ranges calibrated on this many images before step 0
    freeze_observers_after: int | None = None  # step from which ranges stop updating
    freeze_bn_after: int | None = None  # step from which BatchNorm statistics stop updating


@dataclass
class TrainConfig:
    steps: int = 100
    log_every: int = 10
    checkpoint_every: int = 50
    seed: int = 0
    threads: int | None = 2  # per process
    resume: bool = True  # continue from out_dir/last.pt when it exists


@dataclass
class EvalConfig:
    data: str | None = None  # null: no evaluation
    split: str = "val2017"
    classes: list[str] | None = None


@dataclass
class QATConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: dict[str, Any] = field(
        default_factory=lambda: {"_component_": "torch.optim.Adam", "lr": 1e-5}
    )
    # a learning-rate scheduler stepped once per step, e.g. {_component_:
    # torch.optim.lr_scheduler.CosineAnnealingLR, T_max: 100}; null: constant rate
    scheduler: dict[str, Any] | None = None
    loss: dict[str, Any] = field(
        default_factory=lambda: {"_component_": "ssdmobile.training.loss.DetectionLoss"}
    )
    quant: QuantConfig = field(default_factory=QuantConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: list[str] = field(default_factory=lambda: ["executorch"])  # [] to skip
    eval: EvalConfig = field(default_factory=EvalConfig)
    out_dir: str = "runs/qat"


Config = QATConfig  # what `ssdmobile train` loads a YAML file into


def check(cfg: QATConfig) -> None:
    """The values that type checks cannot catch, before any work."""

    def bad(key, why):
        raise ConfigError(f"{key}: {why}")

    if cfg.data.batch_size < 1 or cfg.train.log_every < 1 or cfg.train.checkpoint_every < 1:
        bad("data.batch_size / train.log_every / train.checkpoint_every", "must be at least 1")
    if cfg.train.steps < 0:
        bad("train.steps", "must be at least 0 (0: calibrate and export, no training)")
    if cfg.quant.observer not in ("minmax", "histogram"):
        bad("quant.observer", f"choose minmax or histogram, not {cfg.quant.observer!r}")
    if cfg.quant.calibrate_images is not None and cfg.quant.calibrate_images < 1:
        bad("quant.calibrate_images", "must be at least 1, or null to skip calibration")
    if cfg.quant.observer == "histogram" and not cfg.quant.calibrate_images:
        bad(
            "quant.calibrate_images",
            "the histogram observer needs a calibration pass before training",
        )
    if cfg.quant.observer == "histogram" and cfg.quant.freeze_observers_after != 0:
        bad(
            "quant.freeze_observers_after",
            "histogram ranges are calibrated once and frozen: set it to 0",
        )
    if cfg.eval.data:  # scoring the training images would hide what quantization costs
        refuse_shared_images(
            open_dataset(cfg.data.root, cfg.data.split, cfg.data.num_images),
            open_dataset(cfg.eval.data, cfg.eval.split),
            what="training",
        )
    for t in cfg.export:
        if t not in TARGETS or TARGETS[t].int8 is None or not TARGETS[t].int8.calibrated:
            bad(
                "export",
                f"{t!r}: QAT exports "
                f"{', '.join(n for n, x in TARGETS.items() if x.int8 and x.int8.calibrated)}",
            )
    check_component(cfg.optimizer, "optimizer", provided=["params"])
    if cfg.scheduler is not None:
        check_component(cfg.scheduler, "scheduler", provided=["optimizer"])
    check_component(cfg.loss, "loss", provided=["anchors", "box_coder", "score"])


# -- the recipe -----------------------------------------------------------------------------------


def main(cfg: QATConfig) -> dict:
    check(cfg)
    rank, world = init_distributed()
    log = (lambda msg: print(msg, flush=True)) if rank == 0 else (lambda msg: None)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    rng = random.Random(cfg.train.seed * 1000 + rank)
    # a run that fails before writing anything leaves no empty folder
    out = prepare_out_dir(cfg.out_dir)

    # 1. the float teacher, its training images (each rank takes every world-th), the QAT model
    teacher = create_model(cfg.model.name, cfg.model.weights)
    samples = training_samples(teacher, cfg.data.root, cfg.data.split, cfg.data.num_images)
    mine = samples[rank::world]
    if not mine:
        raise TrainingError(
            f"rank {rank} has no training images ({len(samples)} images, {world} ranks)"
        )
    prepared = prepare_qat(teacher.core, teacher.preprocess([samples[0][0]]), cfg.quant.observer)
    optimizer = instantiate(
        cfg.optimizer, [p for p in prepared.parameters() if p.requires_grad], where="optimizer"
    )
    scheduler = instantiate(cfg.scheduler, optimizer, where="scheduler") if cfg.scheduler else None
    spec = teacher.spec
    loss_fn = instantiate(
        cfg.loss,
        anchors=teacher.anchors,
        box_coder=spec.box_coder,
        score=spec.postprocess.score,
        where="loss",
    )
    config_json = json.dumps(as_dict(cfg))

    # 2. start: resume, or calibrate the ranges as PTQ does (step 0 = the PTQ model)
    start, last = 0, out / "last.pt"
    if cfg.train.resume and last.is_file():
        start = load_checkpoint(last, prepared, optimizer, rng, rank, scheduler)
        log(f"resumed from {last} at step {start}")
    elif cfg.quant.calibrate_images:
        # the first calibrate_images images of the split, whatever data.num_images: the images the
        # ONNX and TorchScript exports calibrate on (export_all)
        calib = calibration_inputs(
            teacher, cfg.data.root, cfg.data.split, cfg.quant.calibrate_images
        )
        calibrate_ranges(prepared, calib, rank == 0)
        log(
            f"quantization ranges calibrated on {len(calib)} {cfg.data.split} images "
            f"({cfg.quant.observer})"
        )
        del calib
        save_checkpoint(
            out, prepared, optimizer, 0, rng, teacher.core, config_json, rank, world, scheduler
        )
    model = nn.parallel.DistributedDataParallel(prepared) if world > 1 else prepared

    # 3. fine-tune
    t0, bn_frozen_now = time.perf_counter(), None
    for step in range(start, cfg.train.steps):
        bn_frozen = cfg.quant.freeze_bn_after is not None and step >= cfg.quant.freeze_bn_after
        if bn_frozen != bn_frozen_now:
            set_bn_frozen(prepared, bn_frozen)
            bn_frozen_now = bn_frozen
        if (
            cfg.quant.freeze_observers_after is not None
            and step >= cfg.quant.freeze_observers_after
        ):
            freeze_observers(prepared)
        x, targets = make_batch(
            teacher,
            [mine[rng.randrange(len(mine))] for _ in range(cfg.data.batch_size)],
            cfg.data.hflip,
            rng,
        )
        with torch.no_grad():
            teacher_out = teacher.core(x)
        loss, parts = loss_fn(model(x), teacher_out, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        done = step + 1
        if done % cfg.train.log_every == 0 or done in (cfg.train.steps, start + 1):
            rate = (time.perf_counter() - t0) / (done - start)
            log(
                f"step {done}/{cfg.train.steps}  loss {float(loss):.4f}  "
                + "  ".join(
                    f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in parts.items()
                )
                + f"  bn {'frozen' if bn_frozen else 'training'}  {rate:.1f} s/step  "
                f"eta {rate * (cfg.train.steps - done) / 60:.1f} min"
            )
        if done % cfg.train.checkpoint_every == 0 or done == cfg.train.steps:
            save_checkpoint(
                out,
                prepared,
                optimizer,
                done,
                rng,
                teacher.core,
                config_json,
                rank,
                world,
                scheduler,
            )
    sha = weights_sha256(prepared)
    (out / f"rank{rank}.sha256").write_text(sha + "\n")
    result = {
        "steps": cfg.train.steps,
        "weights_sha256": sha,
        "checkpoint": str(last),
        "world_size": world,
    }

    # 4. int8 artifacts, 5. their accuracy against the float model
    if rank == 0 and cfg.export:
        artifacts = export_all(cfg, prepared, teacher, out, len(samples))
        result["artifacts"] = [str(a.path) for a in artifacts]
        if cfg.eval.data:
            result["eval"] = evaluate_all(cfg, teacher, artifacts)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def export_all(cfg: QATConfig, prepared, teacher, out: Path, num_images: int) -> list:
    training = {
        "data": cfg.data.root,
        "split": cfg.data.split,
        "num_images": num_images,
        "steps": cfg.train.steps,
        "batch_size": cfg.data.batch_size,
        "observer": cfg.quant.observer,
        "calibrate_images": cfg.quant.calibrate_images,
        "loss": dict(cfg.loss),
    }
    artifacts = []
    if (
        "executorch" in cfg.export
    ):  # the QAT model itself: its trained ranges and weights, converted
        record = {
            **SCHEME,
            "method": "PT2E quantization-aware training (XNNPACKQuantizer, is_qat)",
            "training": training,
        }
        artifacts += export_quantized(
            convert_qat(prepared, teacher), "executorch", out, record, tag="_qat"
        )
    others = [t for t in cfg.export if t != "executorch"]
    if others:  # the QAT-trained float weights, quantized by each target's own quantizer
        student = create_model(cfg.model.name, None)
        student.core.load_state_dict(float_state_dict(prepared, teacher.core))
        student.weights = teacher.weights
        calibration = Calibration(
            cfg.data.root, cfg.data.split, cfg.quant.calibrate_images or 128, cfg.quant.observer
        )
        for target in others:
            artifacts += export(student, target, "int8", out, calibration=calibration, tag="_qat")
    for a in artifacts:
        print(f"wrote {a.path}", flush=True)
    return artifacts


def evaluate_all(cfg: QATConfig, teacher, artifacts) -> dict:
    ds = open_dataset(cfg.eval.data, cfg.eval.split)
    ref = evaluate_model(teacher, ds, cfg.eval.classes, progress=False)
    rows, aps = [["float eager", f"{ref.ap:.4f}", "reference"]], {"float": ref.ap}
    for a in artifacts:
        if TARGETS[a.target].runs_here():
            got = evaluate_artifact(a.path, ds, cfg.eval.classes, threads=2, progress=False)
            rows.append([a.path.name, f"{got.ap:.4f}", f"{got.ap - ref.ap:+.4f}"])
            aps[a.path.name] = got.ap
    print(f"AP on {len(ds)} images of {cfg.eval.data} {cfg.eval.split}:", flush=True)
    print_table(["model", "AP", "dAP"], rows)
    return aps


if __name__ == "__main__":  # python recipes/qat.py --config FILE.yaml [key=value ...]
    from ssdmobile.cli import main as cli_main

    args = sys.argv[1:]
    if args[:1] == ["--config"]:
        args = ["--recipe", *args[1:]]
    sys.exit(cli_main(["train", *args]))
