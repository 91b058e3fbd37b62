"""Quantization-aware training in the XNNPACK int8 scheme (PT2E QAT), driven by a YAML recipe.

Plain PyTorch, top to bottom: build the float detector, torch.export its core in training mode,
`prepare_qat_pt2e` with ExecuTorch's XNNPACKQuantizer (is_qat=True: fake quantization of weights
per channel and activations per tensor, Conv+BN kept unfolded so BN statistics can still train),
fine-tune with the SSD loss and/or distillation from the float model, freeze BatchNorm statistics
and then observers late in training, checkpoint every few steps (resumable), and at the end
`convert_pt2e` and lower to an ExecuTorch XNNPACK int8 .pte (same exporter as PTQ).

Under `torchrun --nproc_per_node N` it runs DDP (gloo on CPU, nccl on GPU): each rank takes every
N-th image, gradients are averaged, rank 0 writes checkpoints and artifacts, and every rank writes
the sha256 of its final weights (`rank<r>.sha256`) so runs can prove the ranks agree.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import SSDMobileError


class RecipeError(SSDMobileError):
    """A recipe file or a key=value override is malformed, names an unknown key or has a bad value."""


@dataclass
class Recipe:
    model: str = "ssdlite_mobilenet_v2_person"
    weights: str | None = "default"
    data: str = "../shared/data/coco128"
    split: str = "train2017"
    num_images: int | None = None  # None: the whole split
    batch_size: int = 8
    steps: int = 100
    lr: float = 1.0e-5
    optimizer: str = "adam"  # adam | sgd
    momentum: float = 0.9
    weight_decay: float = 0.0
    loss: str = "ssd"  # ssd | focal | none (distillation only)
    ssd_weight: float = 1.0
    distill_weight: float = 1.0
    neg_pos_ratio: float = 3.0
    iou_thresh: float = 0.5
    hflip: bool = True
    freeze_bn_after: int | None = None  # step after which BatchNorm statistics stop updating
    freeze_observers_after: int | None = None  # step after which quantization ranges stop updating
    observer: str = "minmax"  # activation ranges: minmax (moving average) | histogram (PTQ's)
    calibrate_images: int | None = None  # set ranges on this many training images before step 0
    checkpoint_every: int = 50
    log_every: int = 10
    seed: int = 0
    threads: int | None = 2  # per process
    out_dir: str = "runs/qat"
    resume: bool = True  # continue from out_dir/last.pt when it exists
    export: list[str] = field(default_factory=lambda: ["executorch"])  # [] to skip
    eval_data: str | None = None  # evaluate the int8 artifact (and the float model) here
    eval_split: str = "val2017"
    eval_classes: list[str] | None = None

    def validate(self) -> None:
        def bad(key, why):
            raise RecipeError(f"recipe key {key!r}: {why} (got {getattr(self, key)!r})")

        if self.optimizer not in ("adam", "sgd"):
            bad("optimizer", "choose adam or sgd")
        if self.loss not in ("ssd", "focal", "none"):
            bad("loss", "choose ssd, focal or none")
        if self.loss == "none" and self.distill_weight <= 0:
            bad("distill_weight", "with loss: none, distillation is the only signal and needs a weight > 0")
        for key in ("batch_size", "checkpoint_every", "log_every"):
            if getattr(self, key) < 1:
                bad(key, "must be at least 1")
        if self.steps < 0:
            bad("steps", "must be at least 0 (0: calibrate and export, no training)")
        if self.observer not in ("minmax", "histogram"):
            bad("observer", "choose minmax or histogram")
        if self.calibrate_images is not None and self.calibrate_images < 1:
            bad("calibrate_images", "must be at least 1, or null to skip calibration")
        if self.observer == "histogram" and not self.calibrate_images:
            bad("calibrate_images", "the histogram observer needs a calibration pass before training")
        if self.observer == "histogram" and self.freeze_observers_after != 0:
            bad("freeze_observers_after", "histogram ranges are calibrated once and frozen: set it to 0")
        if self.lr <= 0:
            bad("lr", "must be > 0")
        if self.split.startswith("val"):
            bad("split", "training on the evaluation split; train on train2017")
        if self.eval_data and self.eval_split == self.split and self.eval_data == self.data:
            bad("eval_split", "evaluating on the training split")
        for t in self.export:
            if t not in ("executorch",):
                bad("export", "QAT exports executorch int8 (other targets: export the float checkpoint with PTQ)")


def _coerce(key: str, value: Any, default: Any, annotation: str):
    """Check a recipe value against the field's type; ints are accepted for floats."""
    allowed = {"str": str, "int": int, "float": (int, float), "bool": bool, "list": list}
    nullable = "None" in annotation
    if value is None:
        if nullable:
            return None
        raise RecipeError(f"recipe key {key!r} cannot be null")
    base = annotation.replace(" | None", "").split("[")[0]
    want = allowed.get(base)
    if want is None:
        return value
    if base == "float" and isinstance(value, str):
        try:  # YAML 1.1 reads 1e-5 (no dot) as a string
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) and base in ("int", "float"):
        raise RecipeError(f"recipe key {key!r} expects a number, got {value!r}")
    if not isinstance(value, want):
        raise RecipeError(f"recipe key {key!r} expects {base}{' or null' if nullable else ''}, got {value!r} "
                          f"({type(value).__name__})")
    return float(value) if base == "float" else value


def load_recipe(path: str | os.PathLike | None, overrides: list[str] = ()) -> Recipe:
    """YAML file + `key=value` overrides (values parsed as YAML: steps=2, hflip=false, export=[])."""
    import yaml

    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise RecipeError(f"recipe not found: {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise RecipeError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise RecipeError(f"{p}: a recipe is a mapping of keys to values")
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {item!r}: expected key=value")
        k, v = item.split("=", 1)
        try:
            data[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError:
            raise RecipeError(f"override {item!r}: the value is not valid YAML") from None
    fields = {f.name: f for f in dataclasses.fields(Recipe)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise RecipeError(f"unknown recipe key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(fields)}")
    values = {k: _coerce(k, v, fields[k].default, str(fields[k].type)) for k, v in data.items()}
    recipe = Recipe(**values)
    recipe.validate()
    return recipe


# -- data -----------------------------------------------------------------------------------------

def _training_samples(detector, recipe: Recipe):
    """[(uint8 image, {"boxes": normalized xyxy, "labels": model ids})] of the training split."""
    from ..data import open_dataset
    from ..evaluate import label_to_category

    ds = open_dataset(recipe.data, recipe.split, recipe.num_images)
    cat_to_label = {c: l for l, c in label_to_category(detector.spec.class_names, ds).items()}
    samples = []
    for i in range(len(ds)):
        s = ds[i]
        t = ds.targets(s.image_id)
        keep = torch.tensor([int(c) in cat_to_label for c in t["category_ids"]], dtype=torch.bool)
        h, w = s.image.shape[-2:]
        boxes = t["boxes"][keep] / torch.tensor([w, h, w, h], dtype=torch.float32)
        labels = torch.tensor([cat_to_label[int(c)] for c in t["category_ids"][keep]], dtype=torch.long)
        samples.append((s.image, {"boxes": boxes.clamp(0, 1), "labels": labels}))
    return samples


def _batch(detector, samples, hflip: bool, rng: random.Random):
    images, targets = [], []
    for img, t in samples:
        boxes = t["boxes"]
        if hflip and rng.random() < 0.5:
            img = img.flip(-1)
            boxes = torch.stack([1 - boxes[:, 2], boxes[:, 1], 1 - boxes[:, 0], boxes[:, 3]], -1)
        images.append(img)
        targets.append({"boxes": boxes, "labels": t["labels"]})
    return detector.preprocess(images), targets


# -- model ----------------------------------------------------------------------------------------

# torchao's PT2E QAT rewrites every Conv+BatchNorm with eps fixed at 1e-5 (torchao 0.18,
# quantization/pt2e/qat_utils.py: "TODO: allow setting eps"), and move_exported_model_to_eval /
# _train swap BatchNorm nodes for a pattern whose eps is 1e-5 too. TF's SSDLite and torchvision's
# MobileNetV3 use eps 1e-3: left alone, the prepared model is a different network (max abs output
# change 5.3 and person AP 0.1985 -> 0.153 on coco128 val2017 with fake quantization *off*).
PT2E_BN_EPS = 1e-5


def _bn_eps_shifts(core: nn.Module) -> dict[str, float]:
    """{BatchNorm module name: eps - 1e-5} for every BatchNorm whose eps is not PT2E's."""
    return {name: m.eps - PT2E_BN_EPS for name, m in core.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.eps != PT2E_BN_EPS}


def bn_eps_to_pt2e(core: nn.Module) -> nn.Module:
    """In place: eps -> 1e-5 with the difference folded into running_var, so that
    sqrt(running_var' + 1e-5) == sqrt(running_var + eps): the same network in eval mode, in the
    form PT2E QAT keeps intact. (In training mode batch statistics would see eps 1e-5; ssdmobile's
    recipes freeze BatchNorm statistics.) `float_state_dict` undoes the shift."""
    modules = dict(core.named_modules())
    for name, shift in _bn_eps_shifts(core).items():
        bn = modules[name]
        with torch.no_grad():
            bn.running_var.add_(shift)
        bn.eps = PT2E_BN_EPS
    return core


def prepare_qat(core: nn.Module, example: torch.Tensor, observer: str = "minmax"):
    """A copy of the float core, prepared for PT2E QAT (fake quantization in the XNNPACK scheme).
    `observer` picks the activation ranges' observer: "minmax" (moving-average min/max, torchao's
    QAT default) or "histogram" (PTQ's; see `calibrate_ranges`)."""
    import copy

    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from .ptq import xnnpack_quantizer

    core = bn_eps_to_pt2e(copy.deepcopy(core))
    # batch >= 2 in training mode (BatchNorm on the 1x1 map needs two values), dynamic so the
    # converted model still takes the single image the exporters trace with
    example = example.expand(2, -1, -1, -1).contiguous() if example.shape[0] < 2 else example
    batch = torch.export.Dim("batch", min=1, max=1024)
    graph = torch.export.export(core.train(), (example,), dynamic_shapes=({0: batch},), strict=False).module()
    return prepare_qat_pt2e(graph, xnnpack_quantizer(observer, qat=True))


def calibrate_ranges(prepared, inputs, progress: bool = True) -> None:
    """Set the quantization ranges as PTQ would, before any training: BatchNorm in eval mode, fake
    quantization off, observers on, run the calibration images, then fake quantization back on.
    With observers frozen afterwards, step 0 of QAT is the PTQ model."""
    from torchao.quantization.pt2e import disable_fake_quant, enable_fake_quant, enable_observer

    from .ptq import calibrate

    _set_bn_frozen(prepared, True)
    prepared.apply(disable_fake_quant)
    prepared.apply(enable_observer)
    calibrate(prepared, inputs, progress, desc="calibrate QAT ranges")
    prepared.apply(enable_fake_quant)


def float_state_dict(prepared, core: nn.Module) -> dict:
    """The trained float weights under the core's own keys (what create_model / PTQ of any target
    loads): the prepared graph keeps parameter and BatchNorm buffer names; the eps shift that
    `bn_eps_to_pt2e` folded into running_var is taken back out."""
    own = core.state_dict()
    sd = prepared.state_dict()
    out = {k: sd[k].detach().clone() for k in own if k in sd}
    for name, shift in _bn_eps_shifts(core).items():
        key = f"{name}.running_var"
        if key in out:  # statistics trained in QAT saw eps 1e-5: a variance below the shift clamps to 0
            out[key] = (out[key] - shift).clamp(min=0)
    return out


def weights_sha256(module: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def _set_bn_frozen(prepared, frozen: bool) -> None:
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

    (move_exported_model_to_eval if frozen else move_exported_model_to_train)(prepared)


def _freeze_observers(prepared) -> None:
    from torchao.quantization.pt2e import disable_observer

    prepared.apply(disable_observer)


# -- the loop -------------------------------------------------------------------------------------

def train(recipe: Recipe, progress: bool = True) -> dict:
    import torch.distributed as dist

    from ..models import create_model
    from .loss import SSDLossConfig, distillation_loss, ssd_loss

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed * 1000 + rank)
    out = Path(recipe.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = (lambda msg: print(msg, flush=True)) if rank == 0 else (lambda msg: None)

    teacher = create_model(recipe.model, recipe.weights)
    samples = _training_samples(teacher, recipe)
    mine = samples[rank::world]
    if not mine:
        raise RecipeError(f"rank {rank} has no training images ({len(samples)} images, {world} ranks)")
    example = teacher.preprocess([samples[0][0]])
    prepared = prepare_qat(teacher.core, example, recipe.observer)
    params = [p for p in prepared.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay) if recipe.optimizer == "adam"
           else torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay))
    start = 0
    last = out / "last.pt"
    resuming = recipe.resume and last.is_file()
    if recipe.calibrate_images and not resuming:
        # PTQ's ranges (same images, same observer) as the starting point: step 0 is the PTQ model
        n = min(recipe.calibrate_images, len(samples))
        calibrate_ranges(prepared, [teacher.preprocess([img]) for img, _ in samples[:n]], progress and rank == 0)
        log(f"quantization ranges calibrated on {n} {recipe.split} images ({recipe.observer})")
        _checkpoint(prepared, opt, 0, recipe, rng, teacher.core, world, rank, out)  # resume skips this
    if resuming:
        ckpt = torch.load(last, map_location="cpu", weights_only=True)
        prepared.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])
        rng.setstate(tuple(_tuplify(ckpt["rng"][rank % len(ckpt["rng"])])))
        log(f"resumed from {last} at step {start}")
    model = prepared
    if world > 1:
        model = nn.parallel.DistributedDataParallel(prepared)
    loss_cfg = SSDLossConfig(iou_thresh=recipe.iou_thresh, neg_pos_ratio=recipe.neg_pos_ratio,
                             focal=recipe.loss == "focal")
    spec, anchors = teacher.spec, teacher.anchors
    t0 = time.perf_counter()
    bn_mode = None
    for step in range(start, recipe.steps):
        bn_frozen = recipe.freeze_bn_after is not None and step >= recipe.freeze_bn_after
        if bn_frozen != bn_mode:  # a graph rewrite: only when the mode changes
            _set_bn_frozen(prepared, bn_frozen)
            bn_mode = bn_frozen
        if recipe.freeze_observers_after is not None and step >= recipe.freeze_observers_after:
            _freeze_observers(prepared)
        batch = [mine[rng.randrange(len(mine))] for _ in range(recipe.batch_size)]
        x, targets = _batch(teacher, batch, recipe.hflip, rng)
        box_encodings, class_logits = model(x)
        loss = torch.zeros(())
        parts = {}
        if recipe.loss != "none" and recipe.ssd_weight > 0:
            sup, parts = ssd_loss(box_encodings, class_logits, targets, anchors, spec.box_coder,
                                  spec.postprocess.score, loss_cfg)
            loss = loss + recipe.ssd_weight * sup
        if recipe.distill_weight > 0:
            with torch.no_grad():
                teacher_out = teacher.core(x)
            kd = distillation_loss((box_encodings, class_logits), teacher_out, spec.postprocess.score)
            loss = loss + recipe.distill_weight * kd
            parts["distill"] = float(kd)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done = step + 1
        if done % recipe.log_every == 0 or done == recipe.steps or done == start + 1:
            rate = (time.perf_counter() - t0) / (done - start)
            log(f"step {done}/{recipe.steps}  loss {float(loss):.4f}  "
                + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in parts.items())
                + f"  bn {'frozen' if bn_frozen else 'training'}  {rate:.1f} s/step  "
                  f"eta {rate * (recipe.steps - done) / 60:.1f} min")
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            _checkpoint(prepared, opt, done, recipe, rng, teacher.core, world, rank, out)
    sha = weights_sha256(prepared)
    (out / f"rank{rank}.sha256").write_text(sha + "\n")
    result = {"steps": recipe.steps, "weights_sha256": sha, "checkpoint": str(last), "world_size": world}
    if rank == 0 and recipe.export:
        result.update(_export(prepared, teacher, recipe, out, len(samples)))
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


def _checkpoint(prepared, opt, step, recipe, rng, core, world, rank, out: Path) -> None:
    import torch.distributed as dist

    states = [rng.getstate()]
    if world > 1:
        gathered = [None] * world
        dist.all_gather_object(gathered, rng.getstate())
        states = gathered
    if rank != 0:
        return
    ckpt = {"model": prepared.state_dict(), "optimizer": opt.state_dict(), "step": step,
            "rng": [list(_listify(s)) for s in states], "recipe_json": json.dumps(dataclasses.asdict(recipe))}
    tmp = out / ".last.pt.part"
    torch.save(ckpt, tmp)
    os.replace(tmp, out / "last.pt")
    tmp = out / ".float.pth.part"  # trained float weights under the model's keys: PTQ for other targets
    torch.save(float_state_dict(prepared, core), tmp)
    os.replace(tmp, out / "float.pth")


def _listify(x):
    return [_listify(v) for v in x] if isinstance(x, (list, tuple)) else x


def _export(prepared, teacher, recipe: Recipe, out: Path, num_images: int) -> dict:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    from .ptq import SCHEME, _evaluable, _write, with_core

    _set_bn_frozen(prepared, True)
    converted = _evaluable(convert_pt2e(prepared))
    qdet = with_core(teacher, converted)
    from ..export import executorch as et_export

    path = _write(et_export, qdet, out, False, "_qat", {
        **SCHEME, "method": "PT2E quantization-aware training (XNNPACKQuantizer, is_qat)",
        "training": {"data": recipe.data, "split": recipe.split, "num_images": num_images, "steps": recipe.steps,
                     "batch_size": recipe.batch_size, "observer": recipe.observer,
                     "calibrate_images": recipe.calibrate_images, "loss": recipe.loss, "distill_weight": recipe.distill_weight}})
    print(f"wrote {path}", flush=True)
    result = {"artifact": str(path)}
    if recipe.eval_data:
        from ..data import open_dataset
        from ..evaluate import evaluate_model
        from ..runtime import evaluate_artifact

        ds = open_dataset(recipe.eval_data, recipe.eval_split)
        ref = evaluate_model(teacher, ds, recipe.eval_classes, progress=False)
        got = evaluate_artifact(path, ds, recipe.eval_classes, threads=2, progress=False)
        print(f"AP on {len(ds)} images of {recipe.eval_data} {recipe.eval_split}: float eager {ref.ap:.4f}, "
              f"QAT int8 ExecuTorch {got.ap:.4f} (dAP {got.ap - ref.ap:+.4f})", flush=True)
        result.update({"float_ap": ref.ap, "qat_ap": got.ap})
    return result
