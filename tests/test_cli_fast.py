"""The CLI answers at once: --version, --help, every COMMAND --help and argument mistakes run
without importing torch or any runtime (the cause of a multi-second answer; benchmarks/bench_cli.py
measures the time itself). Checked in a fresh interpreter, since pytest's has torch loaded."""

import json
import subprocess
import sys

from conftest import REPO

HEAVY = ("torch", "torchvision", "onnx", "onnxruntime", "executorch", "coremltools", "PIL", "numpy")

# argument mistakes a user makes; each must be refused (exit 2) before anything heavy loads
MISTAKES = [
    ["export", "--target", "bogus"],
    ["export", "--target", "onnx", "--precision", "fp64"],
    ["export", "--target", "onnx", "--num-images", "x"],
    ["export", "--target", "onnx", "--calib-data", "/nonexistent"],
    ["quantize", "--target", "bogus", "--calib-data", "."],
    ["validate", "--targets", "bogus"],
    ["validate", "--runs", "0"],
    ["eval", "--data", "/nonexistent"],
    ["predict", "x.jpg", "--threads", "-1"],
    ["bench", "--artifact", "/nonexistent.pte"],
    ["bundle", "--app", "bogus", "--artifact", "x"],
    ["train", "--recipe", "/nonexistent.yaml"],
    ["golden", "--data", "/nonexistent"],
    ["device-report", "/nonexistent.json"],
    ["no-such-command"],
]

PROBE = """
import contextlib, io, json, sys
from ssdmobile.cli import build_parser, main
calls = json.loads(sys.argv[1])
commands = sorted(build_parser()._subparsers._group_actions[0].choices)
codes = {}
for argv in [["--version"], ["--help"]] + [[c, "--help"] for c in commands] + calls:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        codes[" ".join(argv)] = main(argv)
heavy = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
print(json.dumps({"commands": commands, "codes": codes, "heavy": heavy}))
"""


def test_help_and_mistakes_import_nothing_heavy():
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(MISTAKES), json.dumps(HEAVY)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert len(report["commands"]) >= 15  # every command's --help was asked
    codes = report["codes"]
    assert codes["--version"] == 0 and codes["--help"] == 0
    assert all(codes[f"{c} --help"] == 0 for c in report["commands"])
    assert {k: v for k, v in codes.items() if "--help" not in k and k != "--version"} == {
        " ".join(m): 2 for m in MISTAKES
    }
    assert report["heavy"] == []
