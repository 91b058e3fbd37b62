"""Files for the apps' drift-check tests (android_demo/postprocess/test.sh runs this, then JUnit):
real ExecuTorch programs with golden data attached by `ssdmobile export --golden`, RUN by
ExecuTorch's Python runtime on the golden inputs, the outputs saved as the app holds them (flat
float32 arrays in the sidecar's order). Each case says whether the check must pass, and what the
Python side of the check (ssdmobile.drift.compare) found, which the Kotlin side must reproduce.

  python tests/drift_fixtures.py OUT [--images N] [--data COCO128] [--person-graph PB]

Cases (OUT/cases.json):
  person_fp32         the real person detector, fp32 .pte, raw outputs: must pass
  person_fp32_perturb a .pte exported from the same model with its conv weights perturbed by ~2%,
                      run on the true artifact's golden inputs: must fail
  tiny_nms            a small detector with NMS in the program (fixed-size detection rows):
                      must pass
  tiny_nms_perturb    the same, class-head weights perturbed by 5%: must fail
  person_u8_fp32      the person detector taking camera bytes (`export --input uint8`: uint8 RGB
                      [1, H, W, 3], normalization folded into the first convolution): must pass.
                      Its decoded images (OUT/person_u8/images/<stem>.rgb.u8, uint8 [H, W, 3] with
                      <stem>.json {width, height}) let the app's Preprocessor make the golden
                      input bytes from the image, as the host did (PixelInputTest)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ssdmobile.cli import main as cli  # noqa: E402
from ssdmobile.data import load_image  # noqa: E402
from ssdmobile.drift import (  # noqa: E402
    attach_golden,
    compare,
    golden_image_paths,
    read_golden,
    read_inputs,
    save_outputs,
)
from ssdmobile.models import create_model  # noqa: E402
from ssdmobile.sidecar import load_sidecar, sidecar_path  # noqa: E402
from ssdmobile.targets.artifacts import load_runner  # noqa: E402
from ssdmobile.targets.pipeline import export  # noqa: E402

from conftest import COCO128, PERSON_GRAPH  # noqa: E402
from export_fixtures import tiny_detector  # noqa: E402


def perturbed(detector, scale: float, only: str = "", seed: int = 0):
    """The same detector with weights multiplied by (1 + scale * N(0, 1)), elementwise."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in detector.core.named_parameters():
            if name.endswith("weight") and p.dim() == 4 and only in name:
                p.mul_(1 + scale * torch.randn(p.shape, generator=g))
    return detector


def case(out: Path, name: str, artifact: Path, runner_artifact: Path, expect_pass: bool) -> dict:
    """Run `runner_artifact` on `artifact`'s golden inputs, save the
    outputs, check them in Python."""
    manifest, folder = read_golden(artifact)
    runner = load_runner(runner_artifact, threads=2)
    outputs = [
        [t.float().numpy().reshape(-1) for t in runner.run(x)]
        for x in read_inputs(manifest, folder)
    ]
    listing = save_outputs(outputs, manifest, out / "outputs" / name)
    result = compare(manifest, load_sidecar(artifact), outputs, folder)
    if result.passed != expect_pass:
        raise SystemExit(
            f"drift_fixtures: {name}: the Python check {'passed' if result.passed else 'failed'}, "
            f"expected the opposite ({result})"
        )
    return {
        "name": name,
        "sidecar": str(sidecar_path(artifact)),
        "golden": str(folder / "golden.json"),
        "outputs": str(listing),
        "expect_pass": expect_pass,
        "python": result.to_dict(),
    }


def export_with_golden(args, out_dir: Path, *options: str) -> None:
    """`ssdmobile export --target executorch --golden N` of the real person detector."""
    command = ["export", "--target", "executorch", *options, "--weights", args.person_graph]
    command += ["--out", str(out_dir), "--golden", str(args.images), "--golden-data", args.data]
    code = cli(command)
    if code:
        raise SystemExit(f"drift_fixtures: ssdmobile {' '.join(command)} failed ({code})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--data", default=str(COCO128))
    ap.add_argument("--person-graph", default=str(PERSON_GRAPH))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    out = args.out
    cases = []

    # the real detector, through the command line a user runs
    person_dir = out / "person"
    export_with_golden(args, person_dir)
    true_pte = person_dir / "ssdlite_mobilenet_v2_person_executorch_fp32.pte"
    cases.append(case(out, "person_fp32", true_pte, true_pte, True))
    bad = perturbed(create_model("ssdlite_mobilenet_v2_person", weights=args.person_graph), 0.02)
    (bad_pte,) = (
        a.path for a in export(bad, "executorch", "fp32", out / "person_perturbed", progress=False)
    )
    cases.append(case(out, "person_fp32_perturb", true_pte, bad_pte, False))

    # NMS in the program: the check compares detections only
    images = golden_image_paths(args.data, "val2017", args.images)
    tiny = tiny_detector(name="tiny_ssd")
    (tiny_pte,) = (
        a.path for a in export(tiny, "executorch", "fp32", out / "tiny", nms=True, progress=False)
    )
    attach_golden(tiny, tiny_pte, images)
    cases.append(case(out, "tiny_nms", tiny_pte, tiny_pte, True))
    tiny_bad = perturbed(tiny_detector(name="tiny_ssd"), 0.05, only="cls")
    (tiny_bad_pte,) = (
        a.path
        for a in export(
            tiny_bad, "executorch", "fp32", out / "tiny_perturbed", nms=True, progress=False
        )
    )
    cases.append(case(out, "tiny_nms_perturb", tiny_pte, tiny_bad_pte, False))

    # camera bytes in: the program the apps hand uint8 pixels to, through the user's command line
    u8_dir = out / "person_u8"
    export_with_golden(args, u8_dir, "--input", "uint8")
    u8_pte = u8_dir / "ssdlite_mobilenet_v2_person_executorch_fp32_u8.pte"
    (u8_dir / "images").mkdir(exist_ok=True)
    for path in golden_image_paths(args.data, "val2017", args.images):
        image = load_image(path)  # uint8 [3, H, W], decoded as the host decodes
        rgb = image.permute(1, 2, 0).contiguous().numpy()
        rgb.tofile(u8_dir / "images" / f"{path.stem}.rgb.u8")
        (u8_dir / "images" / f"{path.stem}.json").write_text(
            json.dumps({"width": int(image.shape[2]), "height": int(image.shape[1])})
        )
    cases.append(case(out, "person_u8_fp32", u8_pte, u8_pte, True))

    (out / "cases.json").write_text(json.dumps({"cases": cases}, indent=1))
    for c in cases:
        print(
            f"drift case {c['name']}: Python check "
            f"{'PASS' if c['python']['passed'] else 'FAIL'} {c['python']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
