import os
from pathlib import Path

import pytest
import torch

from ssdmobile.models.weights import randomize_  # noqa: F401  (tests import it from here)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
COCO128 = SHARED / "data" / "coco128"
VAL_IMAGES = COCO128 / "images" / "val2017"
# the real TF person detector; passing it as weights imports it offline (no package-index fetch)
PERSON_GRAPH = SHARED / "models" / "ssdlite_mobilenet_v2_person" / "frozen_inference_graph.pb"


# Run in parallel (pytest-xdist with --dist=loadgroup, as pyproject's addopts has it): each
# test file stays on one worker so that its module fixtures (an export, a model) are made once.
# The two files on tests/phone_fixtures.sh's output share a worker and so one session fixture.
# test_family_downstream's large-model tests share nothing between them but a cache, and take a
# fifth of the suite: they are spread test by test.
_GROUPS = {"test_android_postprocess.py": "phone", "test_ios_kit.py": "phone"}
_SPREAD = {"test_family_downstream.py"}


def pytest_configure(config):
    # two threads at most (the machines here have 2 cores), and one worker's share of the cores
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 2) // workers)))


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        group = item.nodeid if name in _SPREAD else _GROUPS.get(name, name)
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def val_image_paths():
    paths = sorted(VAL_IMAGES.glob("*.jpg"))
    if not paths:
        pytest.fail(f"no images under {VAL_IMAGES}: ../shared must sit beside the repository")
    return paths


@pytest.fixture(scope="session")
def phone_fixtures(tmp_path_factory):
    """tests/phone_fixtures.sh once per session: the reference data and drift-check fixtures that
    the Kotlin module's and the Swift package's tests both run on (OUT/reference/*, OUT/drift)."""
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("phone_fixtures")
    proc = subprocess.run(
        ["bash", str(REPO / "tests" / "phone_fixtures.sh"), str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=1800,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"tests/phone_fixtures.sh failed:\n{proc.stderr[-3000:] or proc.stdout[-3000:]}"
        )
    return out
