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


def pytest_configure(config):
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def val_image_paths():
    paths = sorted(VAL_IMAGES.glob("*.jpg"))
    if not paths:
        pytest.fail(f"no images under {VAL_IMAGES}: ../shared must sit beside the repository")
    return paths
