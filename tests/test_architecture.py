"""The package's shape is checked, not hoped for: layers import downward only (import-linter
contracts in pyproject.toml), and an import inside a function is never a way around a circle,
only a way to keep a heavy optional runtime off the import path, said in a `# lazy:` comment."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ssdmobile"


def test_import_contracts_hold():
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout and "5 kept" in proc.stdout


def _why(lines: list[str], i: int, import_lines: set[int]) -> str:
    """The `# lazy: ...` comment on an import's lines or on the block of imports and comments right
    above it (one comment may explain two imports of the same runtime). `i`: the import's last
    line; `import_lines`: every line of the file's imports (a long one spans several)."""
    while i >= 0:
        line = lines[i].strip()
        if "# lazy:" in line:
            return line.split("#", 1)[1].strip()
        if i == 0 or not (i - 1 in import_lines or lines[i - 1].strip().startswith("#")):
            return ""
        i -= 1
    return ""


def function_level_imports():
    """(file, line, imported module, the comment explaining it) for
    every import inside a function."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        import_lines = {
            line - 1
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for line in range(node.lineno, node.end_lineno + 1)
        }
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    module = (
                        ("." * node.level + (node.module or ""))
                        if isinstance(node, ast.ImportFrom)
                        else node.names[0].name
                    )
                    why = _why(lines, node.end_lineno - 1, import_lines)
                    found.append((path.relative_to(REPO), node.lineno, module, why))
    return found


# Every `ssdmobile` call builds the parser of every command, so the command modules import the
# library inside the function that runs (ssdmobile/commands/__init__.py says so once, and
# tests/test_cli_fast.py checks that --help and argument mistakes load no torch).
COMMANDS = "ssdmobile/commands/"


def test_no_function_level_import_of_the_package_itself():
    # besides the commands, only the CLI (it discovers the command modules inside its Ctrl-C guard)
    # and bundle.py (whose APPS table `bundle --help` reads) import package modules late
    own = [
        f"{f}:{n} imports {m}"
        for f, n, m, _ in function_level_imports()
        if m.startswith((".", "ssdmobile"))
        and f.as_posix() not in ("ssdmobile/cli.py", "ssdmobile/bundle.py")
        and not f.as_posix().startswith(COMMANDS)
    ]
    assert own == []


def test_every_lazy_import_says_why():
    silent = [
        f"{f}:{n} imports {m}"
        for f, n, m, why in function_level_imports()
        if not why.startswith("lazy:") and not f.as_posix().startswith(COMMANDS)
    ]
    assert silent == [], (
        "add a `# lazy: <why>` comment (a heavy optional runtime, not a cycle):\n"
        + "\n".join(silent)
    )


def test_a_new_target_is_an_exporter_a_runner_and_one_table_entry(tmp_path, monkeypatch):
    """What the README's "Adding a target" promises: with an exporter and a runner (here a lite-
    interpreter-only TorchScript target written in a few lines) and one entry in the table, export,
    load_runner and validate all take the new target; nothing else changes."""
    import dataclasses

    import torch

    from ssdmobile import targets
    from ssdmobile.data import CocoDataset
    from ssdmobile.export._common import (
        Artifact,
        artifact_stem,
        atomic_output,
        declared_outputs,
        example_input,
        make_sidecar,
    )
    from ssdmobile.export._tensor_nms import traceable
    from ssdmobile.runtime import torchscript as ts_runtime
    from ssdmobile.targets.artifacts import load_runner
    from ssdmobile.targets.pipeline import export
    from ssdmobile.validate import ValidateOptions, validate

    from conftest import COCO128
    from export_fixtures import tiny_detector

    def export_lite(detector, req):
        x = example_input(detector)
        traced = torch.jit.trace(traceable(detector, req.nms), x, check_trace=False)
        final = req.out_dir / f"{artifact_stem(detector.spec.name, 'ptlite', req)}.ptl"
        with atomic_output(final) as pending:
            traced._save_for_lite_interpreter(str(pending.path))
            make_sidecar(
                detector,
                pending,
                final,
                req,
                target="ptlite",
                input_name="input",
                input_shape=list(x.shape),
                outputs=declared_outputs(detector, req.nms),
            )
        return [Artifact(final, "ptlite", req.precision, req.nms, "lite interpreter")]

    entry = dataclasses.replace(
        targets.TARGETS["torchscript"],
        name="ptlite",
        suffixes=(".ptl",),
        precisions=("fp32",),
        exporter=export_lite,
        check_file=ts_runtime.check_file,
        load=ts_runtime.load,
        int8=None,
    )
    # .ptl now belongs to the new one
    table = {k: v for k, v in targets.TARGETS.items() if k != "torchscript"}
    monkeypatch.setattr(targets, "TARGETS", {**table, "ptlite": entry})
    det = tiny_detector()
    (art,) = export(det, "ptlite", None, tmp_path / "a")
    assert (
        art.path.suffix == ".ptl"
        and load_runner(art.path).run(example_input(det))[0].shape[-1] == 4
    )
    import ssdmobile.validate as v

    monkeypatch.setattr(v, "TARGETS", targets.TARGETS)
    result = validate(
        det,
        CocoDataset(COCO128, "val2017", max_images=2),
        tmp_path / "v",
        ValidateOptions(targets=["ptlite"], nms_modes=(False,), runs=3, warmup=1, progress=False),
    )
    (row,) = result.rows
    assert row.target == "ptlite" and row.status == "ok" and row.det_match == "2/2"
