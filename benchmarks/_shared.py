"""Where the benchmarks find the shared data (../shared beside the repository), so they import only
the ssdmobile package and this file, never the tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
COCO128 = SHARED / "data" / "coco128"
VAL_IMAGES = COCO128 / "images" / "val2017"
PERSON_GRAPH = SHARED / "models" / "ssdlite_mobilenet_v2_person" / "frozen_inference_graph.pb"


def first_val_image() -> Path:
    images = sorted(VAL_IMAGES.glob("*.jpg"))
    if not images:
        raise SystemExit(f"no images under {VAL_IMAGES}: ../shared must sit beside the repository")
    return images[0]
