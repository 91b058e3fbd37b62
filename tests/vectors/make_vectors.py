"""Fill in (or refresh) the expected fields of test-vector cases from the Python reference, and
rewrite the files in their layout:

  python tests/vectors/make_vectors.py [FILE.json ...]     (default: every file here)

A case may leave its expected fields out; everything else (inputs, tolerances, names) is kept as
written. Review the diff: the JSON files are the source of truth, and tests/test_vectors.py checks
them against the same reference (tests/test_vectors.py's compute_* functions)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ssdmobile.schema.vectors import TestVectors  # noqa: E402
from test_vectors import COMPUTE  # noqa: E402

WIDTH = 118


def dumps(value, depth: int = 0) -> str:
    """JSON with the file, its sections and its cases spread over lines, anything deeper on one
    line when it fits."""
    pad = "  " * depth
    flat = json.dumps(value, allow_nan=False)
    if (
        not isinstance(value, (dict, list))
        or not value
        or (depth > 2 and len(pad) + len(flat) < WIDTH - 8)
    ):
        return flat
    if isinstance(value, dict):
        items = [f"{pad}  {json.dumps(k)}: {dumps(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    return "[\n" + ",\n".join(f"{pad}  {dumps(v, depth + 1)}" for v in value) + f"\n{pad}]"


def main(paths: list[Path]) -> None:
    for path in paths:
        data = json.loads(path.read_text())
        for section, compute in COMPUTE.items():
            for case in data.get(section, []):
                case.update(compute(case))
        TestVectors.model_validate_json(json.dumps(data), strict=True)
        path.write_text(dumps(data) + "\n")
        print(f"{path}: {', '.join(f'{len(data[s])} {s}' for s in COMPUTE if s in data)}")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]] or sorted(HERE.glob("*.json")))
