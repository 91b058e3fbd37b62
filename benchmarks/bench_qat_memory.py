"""Peak resident memory of the QAT recipe end to end (`ssdmobile train --recipe
recipes/qat_ssdlite_person_coco128.yaml`: teacher and QAT model, PT2E range calibration, training,
ExecuTorch / ONNX / TorchScript int8 exports each calibrated on the same images, evaluation) as its
calibration images grow, and the person AP of every artifact on the 128 val2017 images. Each
measurement is a fresh process (the peak: wait4's ru_maxrss of that process); the peak after each
stage of the recipe says which stage sets it.

The training is a few steps on the same 128 train2017 images whatever the calibration size
(data.num_images=128): the point is the memory of the recipe's pipeline at that calibration size,
not a trained model. Past 128 images the calibration images are the train2017 images again,
flipped (a temporary copy of coco128's train2017 with mirrored copies, lossless PNG, appended), so
that 256 calibrates on the same pixels as 128 and the AP must not move.

    python benchmarks/bench_qat_memory.py [--images 128 256] [--steps 2] [--parallel]
        [--results docs/results/qat_memory.json] [--set key=value ...]
    python benchmarks/bench_qat_memory.py --merge A.json B.json [--results ...]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ssdmobile.results import Table, write_results
from ssdmobile.table import print_table

from _shared import COCO128, REPO

RECIPE = REPO / "recipes" / "qat_ssdlite_person_coco128.yaml"
TRAIN_IMAGES = 128  # coco128's train2017: the images trained on, whatever the calibration size

# one run of the recipe (what `ssdmobile train` does), its recipe functions wrapped to note the
# process's peak after each stage
WORKER = """
import json, resource, sys
from ssdmobile.commands.train import load_recipe

module, cfg = load_recipe(sys.argv[1], sys.argv[2:])
stages = []
NAMES = {"training_samples": "training images", "prepare_qat": "QAT model",
         "calibrate_ranges": "PT2E calibration", "export_quantized": "executorch export",
         "evaluate_all": "evaluation"}

def staged(name, fn):
    def wrapped(*args, **kwargs):
        out = fn(*args, **kwargs)
        label = (f"{args[1]} export" if name == "export"
                 else f"checkpoint at step {args[3]}" if name == "save_checkpoint"
                 else NAMES[name])
        stages.append([label, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss])
        return out
    return wrapped

for name in [*NAMES, "export", "save_checkpoint"]:
    setattr(module, name, staged(name, getattr(module, name)))
result = module.main(cfg)
print(json.dumps({"result": result, "stages": stages}, default=float))
"""


def calibration_root(n: int, root: Path) -> Path:
    """coco128 with train2017 holding its 128 images (linked) then mirrored copies of them until
    there are n (ids after theirs, boxes mirrored); val2017 linked."""
    from PIL import Image, ImageOps

    (root / "annotations").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "images" / "val2017").symlink_to(COCO128 / "images" / "val2017")
    (root / "annotations" / "instances_val2017.json").symlink_to(
        COCO128 / "annotations" / "instances_val2017.json"
    )
    train = root / "images" / "train2017"
    train.mkdir()
    data = json.loads((COCO128 / "annotations" / "instances_train2017.json").read_text())
    images = sorted(data["images"], key=lambda im: im["id"])
    for im in images:
        (train / im["file_name"]).symlink_to(COCO128 / "images" / "train2017" / im["file_name"])
    offset = max(im["id"] for im in images) + 1
    ann_offset = max(a["id"] for a in data["annotations"]) + 1
    by_image = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for i in range(n - len(images)):
        im = images[i % len(images)]
        if i >= len(images):
            raise SystemExit(
                f"at most {2 * len(images)} calibration images (each image once flipped)"
            )
        name = f"flipped_{Path(im['file_name']).stem}.png"
        with Image.open(COCO128 / "images" / "train2017" / im["file_name"]) as src:
            ImageOps.mirror(src).save(train / name)
        data["images"].append({**im, "id": offset + i, "file_name": name})
        for a in by_image.get(im["id"], []):
            x, y, w, h = a["bbox"]
            data["annotations"].append(
                {
                    **a,
                    "id": ann_offset + len(data["annotations"]),
                    "image_id": offset + i,
                    "bbox": [im["width"] - x - w, y, w, h],
                    "segmentation": [],
                }
            )
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    return root


def start(n: int, steps: int, data: Path, out: Path, extra: list[str]) -> dict:
    """The recipe at n calibration images, started in its own process (output to files)."""
    overrides = [
        f"data.root={data}",
        f"data.num_images={TRAIN_IMAGES}",
        f"quant.calibrate_images={n}",
        f"train.steps={steps}",
        f"train.checkpoint_every={max(steps, 1)}",
        f"eval.data={COCO128}",
        f"out_dir={out / f'qat_{n}'}",
        *extra,
    ]
    log = {k: (out / f"qat_{n}.{k}").open("w+") for k in ("stdout", "stderr")}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(RECIPE), *overrides], cwd=REPO, text=True, **log
    )
    return {"n": n, "proc": proc, **log}


def finish(run: dict) -> dict:
    """Its result, stages and peak: wait4's ru_maxrss is that process's own (getrusage's
    RUSAGE_CHILDREN would be the largest of every child waited for so far)."""
    _, status, usage = os.wait4(run["proc"].pid, 0)
    run["proc"].returncode = code = os.waitstatus_to_exitcode(status)
    stdout, stderr = ((run[k].seek(0), run[k].read())[1] for k in ("stdout", "stderr"))
    lines = stdout.strip().splitlines()
    if code != 0 or not lines:
        raise SystemExit(f"calibration {run['n']}: exit {code}: {stderr.strip()[-2000:]}")
    r = json.loads(lines[-1])
    r["peak_kb"] = usage.ru_maxrss
    print(json.dumps(r), flush=True)  # the raw measurement, before any table
    return r


def target(artifact: str) -> str:
    """An artifact's column: its target, and its variant (ORT-format mobile, TorchScript lite)."""
    kind = next(t for t in ("executorch", "onnx", "torchscript") if f"_{t}_" in artifact)
    return f"{kind}{Path(artifact).stem.split('_int8_qat')[-1].replace('_', ' ')}"


H1 = [
    "calibration images",
    "training steps",
    "peak RSS",
    "peak to calibration",
    "stage at the peak",
]
TITLES = (
    "ssdlite_mobilenet_v2_person: QAT recipe (qat_ssdlite_person_coco128.yaml) end to end, peak "
    "memory and person AP (128 val2017 images)",
    "peak RSS after each stage of the recipe",
)


def measured(n: int, steps: int, r: dict) -> tuple[list[str], list[str], dict[str, str]]:
    """One run as (its row, the AP columns' names, {stage: peak after it})."""
    peak = r["peak_kb"]
    at = next((s for s, kb in r["stages"] if kb >= peak), "process exit")
    before = max((kb for s, kb in r["stages"] if s == "checkpoint at step 0"), default=0)
    aps = {
        ("float" if k == "float" else target(k)): v for k, v in r["result"].get("eval", {}).items()
    }
    row = [str(n), str(steps), f"{peak / 1e6:.2f} GB", f"{before / 1e6:.2f} GB", at]
    row += [f"{v:.4f}" for v in aps.values()]
    return row, [f"AP {m}" for m in aps], {s: f"{kb / 1e6:.2f} GB" for s, kb in r["stages"]}


def tables(headers: list[str], rows: list[list[str]], stages: dict[str, dict[str, str]]) -> list:
    """The runs' table, the peak after each stage, and each AP against the fewest images'."""
    rows = sorted(rows, key=lambda row: int(row[0]))
    sizes = [row[0] for row in rows]
    h2 = ["stage", *(f"{n} images" for n in sizes)]
    by_stage = [[s, *(stages[s].get(n, "-") for n in sizes)] for s in stages]
    out = [Table(title=TITLES[0], headers=headers, rows=rows)]
    if by_stage:
        out.append(Table(title=TITLES[1], headers=h2, rows=by_stage))
    ap_cols = [i for i, h in enumerate(headers) if h.startswith("AP ")]
    if ap_cols and len(rows) > 1:
        first = rows[0]
        h3 = ["calibration images", *(f"Δ{headers[i]}" for i in ap_cols)]
        delta = [
            [
                f"{row[0]} vs {first[0]}",
                *(f"{float(row[i]) - float(first[i]):+.4f}" for i in ap_cols),
            ]
            for row in rows[1:]
        ]
        out.append(
            Table(
                title=f"person AP against {first[0]} calibration images (the same pixels, flipped "
                "copies past 128)",
                headers=h3,
                rows=delta,
            )
        )
    return out


def merged(paths: list[str]) -> tuple[list[str], list[list[str]], dict, list[str]]:
    """Runs measured by earlier commands as one set of tables: each run rebuilt from the raw line
    this benchmark printed for it (a printout: any file not ending .json); a results file of this
    benchmark names the command, date and load of its runs."""
    from ssdmobile.results import load_results

    headers, rows, stages, notes = None, [], {}, []
    for path in paths:
        if path.endswith(".json"):
            r = load_results(path)
            notes.append(
                f"Runs measured by `{r.command}`, written {r.date}, load average "
                f"{r.machine.load_average[0]:g} (other work on the cores)."
            )
            continue
        for line in Path(path).read_text().splitlines():
            if line.startswith('{"result"'):
                r = json.loads(line)
                n = int(Path(r["result"]["checkpoint"]).parent.name.removeprefix("qat_"))
                row, ap_headers, by_stage = measured(n, r["result"]["steps"], r)
                headers = headers or H1 + ap_headers
                rows.append(row)
                for stage, cell in by_stage.items():
                    stages.setdefault(stage, {})[str(n)] = cell
    return headers, rows, stages, notes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--steps", type=int, default=2, help="training steps (batches of 4)")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="key=value",
        help="more recipe overrides (a quick look: export=[onnx] eval.data=null)",
    )
    ap.add_argument(
        "--parallel",
        action="store_true",
        help="run the calibration sizes at the same time (each process's peak is its own)",
    )
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="FILE",
        help="measure nothing: one set of tables from the raw runs this benchmark printed "
        "(its printouts; a results file of theirs: the command that measured them)",
    )
    ap.add_argument("--results", help="write the results JSON here (docs/results/NAME.json)")
    args = ap.parse_args()

    if args.merge:
        headers, rows, stages, runs_notes = merged(args.merge)
    else:
        headers, rows, stages, runs_notes = None, [], {}, []
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            data = calibration_root(max(args.images), tmp / "coco")
            sizes = sorted(args.images)
            # --parallel: all at once; otherwise each started when the one before has ended
            runs = [
                start(n, args.steps, data, tmp, args.set) if args.parallel else None for n in sizes
            ]
            for i, n in enumerate(sizes):
                row, ap_headers, by_stage = measured(
                    n, args.steps, finish(runs[i] or start(n, args.steps, data, tmp, args.set))
                )
                headers = headers or H1 + ap_headers
                rows.append(row)
                for stage, cell in by_stage.items():
                    stages.setdefault(stage, {})[str(n)] = cell
                print(row, flush=True)
    out = tables(headers, rows, stages)
    for t in out:
        print(t.title)
        print_table(t.headers, t.rows)
    if args.results:
        steps = sorted({row[1] for row in rows})
        write_results(
            args.results,
            out,
            threads=2,
            images=128,
            notes=[
                "Peak RSS (ru_maxrss) of a fresh process running the whole recipe (`ssdmobile "
                "train`'s load_recipe and main); 'peak to calibration' is the peak up to the PT2E "
                "calibration's checkpoint (step 0); the stage at the peak is the first recipe "
                "stage after which the peak was reached.",
                f"Training: {'/'.join(steps)} steps of 4 images from the same {TRAIN_IMAGES} "
                "train2017 images at every calibration size (the memory of the pipeline, not a "
                "trained model); calibration: the first N train2017 images for PT2E, ONNX and "
                "TorchScript alike, past 128 the same images flipped (lossless copies).",
                *runs_notes,
            ],
        )


if __name__ == "__main__":
    main()
